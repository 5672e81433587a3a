"""Pipe mode: stream a channel's objects into per-epoch FIFOs, as SageMaker does.

For channel ``train`` the algorithm opens ``train_0`` and reads to EOF for the first epoch, then
``train_1`` for the next, and so on. A feeder thread creates each FIFO, blocks until the reader
opens it, and copies the channel's objects through it in fixed-size chunks, so memory stays bounded
however large the channel is. Gzip objects are decompressed on the way; ``RecordWrapperType=RecordIO``
wraps each object as one RecordIO record.
"""

from __future__ import annotations

import gzip
import os
import random
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

CHUNK = 1 << 20

Opener = Callable[[str], IO[bytes]]


class PipeFeeder:
    """Feeds one channel's FIFOs until ``close``; one daemon thread per channel."""

    def __init__(
        self,
        channel: str,
        folder: Path,
        objects: Sequence[str],
        opener: Opener,
        *,
        compression: str = "None",
        record_wrapper: str = "None",
        shuffle_seed: int | None = None,
    ) -> None:
        self.channel = channel
        self.folder = folder
        self.objects = list(objects)
        self.opener = opener
        self.compression = compression
        self.record_wrapper = record_wrapper
        self.shuffle_seed = shuffle_seed
        self.error: BaseException | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipe-{channel}", daemon=True)
        folder.mkdir(parents=True, exist_ok=True)
        self._make_fifo(0)  # the first epoch's FIFO exists before the algorithm starts

    def fifo_path(self, epoch: int) -> Path:
        return self.folder / f"{self.channel}_{epoch}"

    def _make_fifo(self, epoch: int) -> None:
        path = self.fifo_path(epoch)
        if not path.exists():
            os.mkfifo(path)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        epoch = 0
        try:
            while not self._closed.is_set():
                self._make_fifo(epoch)
                order = list(self.objects)
                if self.shuffle_seed is not None:
                    random.Random(self.shuffle_seed + epoch).shuffle(order)
                with open(self.fifo_path(epoch), "wb", buffering=0) as pipe:  # blocks until a reader opens
                    if self._closed.is_set():
                        return
                    # the next epoch's FIFO exists before this one ends, so a fast reader finds it
                    self._make_fifo(epoch + 1)
                    for uri in order:
                        self._copy(uri, pipe)
                self.fifo_path(epoch).unlink(missing_ok=True)
                epoch += 1
        except BrokenPipeError:
            return  # the reader stopped early: allowed, the epoch simply ends
        except BaseException as exc:  # reported by the runner as a ClientError
            self.error = exc

    def _copy(self, uri: str, pipe: IO[bytes]) -> None:
        from forgeml.data.recordio import write_recordio

        with self.opener(uri) as raw:
            source: IO[bytes] = gzip.GzipFile(fileobj=raw) if self.compression == "Gzip" else raw  # type: ignore[assignment]
            if self.record_wrapper == "RecordIO":
                write_recordio(pipe, source.read())
                return
            while chunk := source.read(CHUNK):
                pipe.write(chunk)

    def close(self) -> None:
        """Stop feeding: unblock a feeder waiting for a reader, remove the FIFOs."""
        self._closed.set()
        for path in self.folder.glob(f"{self.channel}_*"):
            with suppress(OSError):
                # Opening the read end releases a writer blocked in open(); then remove the FIFO.
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            path.unlink(missing_ok=True)
        self._thread.join(timeout=2)
