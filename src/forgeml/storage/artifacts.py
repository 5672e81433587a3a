"""The artifact store.

In the embedded default, ``s3://bucket/key`` is the file ``$FORGEML_HOME/s3/bucket/key``, so a
notebook's S3 paths work offline; local paths and ``file://`` URIs are used as they are. With
``FORGEML_S3_ENDPOINT_URL`` set, ``s3://`` goes to that S3-compatible store through s3fs and the
standard AWS credential variables.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from forgeml.config import Config
from forgeml.storage.uri import S3Location, is_s3_uri, parse_s3_uri


@dataclass(frozen=True)
class StoredObject:
    """One object under a prefix: its URI, its name relative to the prefix's folder, its size."""

    uri: str
    relative_name: str
    size: int


class ObjectStore(Protocol):
    """What the folder copies need from a store."""

    def put_file(self, local: str | Path, uri: str) -> None: ...

    def get_file(self, uri: str, local: str | Path, *, link: bool = False) -> None: ...

    def list_objects(self, prefix_uri: str) -> list[StoredObject]: ...


class FolderTransfers:
    """Whole-folder copies for any ``ObjectStore`` (the local store and the remote one share them)."""

    def upload_directory(self: ObjectStore, local_dir: str | Path, prefix_uri: str) -> list[str]:
        """Upload every file under ``local_dir`` below ``prefix_uri``; returns the URIs written."""
        written = []
        base = Path(local_dir)
        prefix = prefix_uri.rstrip("/")
        for file in sorted(p for p in base.rglob("*") if p.is_file()):
            uri = f"{prefix}/{file.relative_to(base).as_posix()}"
            self.put_file(file, uri)
            written.append(uri)
        return written

    def download_prefix(self: ObjectStore, prefix_uri: str, local_dir: str | Path, *, link: bool = False) -> list[Path]:
        """Download every object under ``prefix_uri`` into ``local_dir``, keeping relative names."""
        target = Path(local_dir)
        paths = []
        for obj in self.list_objects(prefix_uri):
            dest = target / obj.relative_name
            self.get_file(obj.uri, dest, link=link)
            paths.append(dest)
        return paths


class ArtifactStore(FolderTransfers):
    def __init__(self, config: Config) -> None:
        self.config = config
        self._s3fs: Any = None

    # -- resolution -----------------------------------------------------------------------------
    @property
    def uses_remote_s3(self) -> bool:
        return bool(self.config.s3_endpoint_url)

    def local_path(self, uri: str) -> Path | None:
        """The file-system path behind ``uri``, or None when it lives in a remote store."""
        if is_s3_uri(uri):
            if self.uses_remote_s3:
                return None
            loc = parse_s3_uri(uri)
            return self.config.local_s3_root / loc.bucket / loc.key
        if uri.startswith("file://"):
            return Path(uri[len("file://") :])
        return Path(uri)

    def _remote(self) -> Any:
        if self._s3fs is None:
            import s3fs  # optional dependency: only needed with a real S3 endpoint

            self._s3fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.config.s3_endpoint_url})
        return self._s3fs

    @staticmethod
    def _remote_path(uri: str) -> str:
        loc = parse_s3_uri(uri)
        return f"{loc.bucket}/{loc.key}"

    # -- buckets ----------------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        S3Location(bucket, "")  # shape only
        parse_s3_uri(f"s3://{bucket}/")
        if self.uses_remote_s3:
            fs = self._remote()
            if not fs.exists(bucket):
                fs.mkdir(bucket)
        else:
            (self.config.local_s3_root / bucket).mkdir(parents=True, exist_ok=True)

    # -- objects ----------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        path = self.local_path(uri)
        if path is not None:
            return path.exists()
        return bool(self._remote().exists(self._remote_path(uri)))

    def open(self, uri: str, mode: str = "rb") -> IO[Any]:
        path = self.local_path(uri)
        if path is not None:
            if "w" in mode or "a" in mode:
                path.parent.mkdir(parents=True, exist_ok=True)
            return open(path, mode)  # noqa: SIM115 - the caller owns the handle
        return self._remote().open(self._remote_path(uri), mode)

    def put_file(self, local: str | Path, uri: str) -> None:
        path = self.local_path(uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            shutil.copyfile(local, tmp)
            os.replace(tmp, path)  # readers never see half an object
        else:
            self._remote().put_file(str(local), self._remote_path(uri))

    def put_bytes(self, data: bytes, uri: str) -> None:
        with self.open(uri, "wb") as handle:
            handle.write(data)

    def get_bytes(self, uri: str) -> bytes:
        with self.open(uri, "rb") as handle:
            data: bytes = handle.read()
            return data

    def get_file(self, uri: str, local: str | Path, *, link: bool = False) -> None:
        """Copy an object to ``local``; with ``link`` a local object is hard-linked (File mode)."""
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        path = self.local_path(uri)
        if path is None:
            self._remote().get_file(self._remote_path(uri), str(target))
            return
        if link:
            try:
                os.link(path, target)
                return
            except OSError:
                pass  # another file system, or links not allowed: fall back to a copy
        shutil.copyfile(path, target)

    def delete(self, uri: str) -> None:
        path = self.local_path(uri)
        if path is None:
            self._remote().rm(self._remote_path(uri), recursive=True)
        elif path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def list_objects(self, prefix_uri: str) -> list[StoredObject]:
        """Objects whose URI starts with ``prefix_uri``, as S3 matches a key prefix, sorted by key.

        ``relative_name`` is the key with the prefix removed (the file name when the prefix is the
        object itself), which is how SageMaker lays out a channel's files under
        ``/opt/ml/input/data/<channel>/``.
        """
        return sorted(self._iter_objects(prefix_uri), key=lambda obj: obj.uri)

    @staticmethod
    def _relative(prefix_uri: str, uri: str) -> str:
        rest = uri[len(prefix_uri) :].lstrip("/")
        return rest or uri.rsplit("/", 1)[-1]

    def _iter_objects(self, prefix_uri: str) -> Iterator[StoredObject]:
        path = self.local_path(prefix_uri)
        if path is None:
            fs = self._remote()
            base = self._remote_path(prefix_uri)
            parent = base.rsplit("/", 1)[0] if "/" in base else base
            for key, info in fs.find(parent, detail=True).items():
                if key.startswith(base) and info.get("type") != "directory":
                    uri = f"s3://{key}"
                    yield StoredObject(uri, self._relative(prefix_uri, uri), int(info.get("size") or 0))
            return
        if path.is_file():
            yield StoredObject(prefix_uri, self._relative(prefix_uri, prefix_uri), path.stat().st_size)
            return
        text = str(path)
        folder: Path
        # "s3://b/data/" lists the folder; "s3://b/data/tra" lists keys starting with "tra".
        folder = path if prefix_uri.endswith("/") else path.parent
        if not folder.is_dir():
            return
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                if name.startswith(".") and ".tmp-" in name:
                    continue  # an upload in progress
                full = os.path.join(root, name)
                if not full.startswith(text):
                    continue
                rel = full[len(text) :].lstrip("/") if prefix_uri.endswith("/") else None
                uri = prefix_uri + rel if rel is not None else prefix_uri + full[len(text) :]
                yield StoredObject(uri, self._relative(prefix_uri, uri), os.path.getsize(full))
