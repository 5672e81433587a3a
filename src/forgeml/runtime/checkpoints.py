"""CheckpointConfig: the local checkpoint folder restored at start and synced to its URI during training."""

from __future__ import annotations

import threading
from pathlib import Path

from forgeml.storage import ArtifactStore


class CheckpointSync:
    def __init__(self, store: ArtifactStore, uri: str, local_dir: Path, interval: float = 5.0) -> None:
        self.store = store
        self.uri = uri.rstrip("/") + "/"
        self.local_dir = local_dir
        self.interval = interval
        self._seen: dict[str, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restore(self) -> int:
        """Download what an earlier job with this checkpoint URI left; returns the file count."""
        self.local_dir.mkdir(parents=True, exist_ok=True)
        files = self.store.download_prefix(self.uri, self.local_dir)
        for path in files:
            stat = path.stat()
            self._seen[path.relative_to(self.local_dir).as_posix()] = (stat.st_mtime, stat.st_size)
        return len(files)

    def sync(self) -> int:
        """Upload files that are new or changed since the last sync; returns how many."""
        uploaded = 0
        for path in sorted(p for p in self.local_dir.rglob("*") if p.is_file()):
            relative = path.relative_to(self.local_dir).as_posix()
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # removed while we looked
            signature = (stat.st_mtime, stat.st_size)
            if self._seen.get(relative) == signature:
                continue
            self.store.put_file(path, self.uri + relative)
            self._seen[relative] = signature
            uploaded += 1
        return uploaded

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="checkpoint-sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sync()
