"""Reading a SageMaker input channel, in File mode or Pipe mode.

File mode: the channel is a folder (``/opt/ml/input/data/<channel>``) holding the S3 objects;
every regular file under it is data except hidden files and manifests, read in key order.  Pipe
mode: the channel is a FIFO (``<dir>/<channel>_<epoch>``) carrying all objects back to back; it
can be read once, sequentially, so ``iter_channel`` streams it in bounded memory.  Both modes
decode by the channel's ``ContentType`` and see through gzip.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from forgeml.data import content_types as ct
from forgeml.data.csv_format import iter_csv, read_csv
from forgeml.data.dataset import RecordBatch, concat_batches
from forgeml.data.jsonlines import iter_jsonlines, read_json, read_jsonlines
from forgeml.data.libsvm import iter_libsvm, read_libsvm
from forgeml.data.parquet import iter_parquet, read_parquet
from forgeml.data.recordio_protobuf import iter_recordio_protobuf, read_recordio_protobuf
from forgeml.errors import ClientError, DataFormatError

PathLike = str | os.PathLike[str]


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _manifest(name: str) -> bool:
    return name.endswith(".manifest")


def _is_stream_path(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def list_channel_files(path: PathLike, channel: str | None = None) -> list[Path]:
    """Every data file of a channel, sorted like S3 keys; a single file (or FIFO) is itself.

    Hidden files and folders (``.`` prefix) and manifest files are skipped.  Symlinked folders
    are followed, since a runtime may link a channel's data into place.
    """
    root = Path(path)
    label = f"channel {channel!r}" if channel else "channel"
    if not root.exists():
        raise DataFormatError(f"{label} does not exist", path=str(root))
    if not root.is_dir():
        return [root]
    found: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in names:
            candidate = Path(folder, name)
            if _hidden(name) or _manifest(name) or not candidate.is_file():
                continue
            found.append((candidate.relative_to(root).as_posix(), candidate))
    if not found:
        raise DataFormatError(f"{label} is empty: it has no data files", path=str(root))
    return [candidate for _, candidate in sorted(found)]


def _label_size(params: dict[str, str], content_type: str) -> int:
    raw = params.get("label_size", "1")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ClientError(f"invalid label_size {raw!r} in content type {content_type!r}; expected a non-negative integer")
    return value


def _whole_reader(content_type: str) -> Callable[[Any], RecordBatch]:
    mime = ct.canonical_mime(content_type)
    _, params = ct.parse_content_type(content_type)
    if mime == ct.CSV:
        label_size = _label_size(params, content_type)
        return lambda source: read_csv(source, label_size=label_size)
    if mime == ct.PARQUET:
        label_size = _label_size(params, content_type)
        return lambda source: read_parquet(source, label_size=label_size)
    readers: dict[str, Callable[[Any], RecordBatch]] = {
        ct.LIBSVM: read_libsvm,
        ct.RECORDIO_PROTOBUF: read_recordio_protobuf,
        ct.JSONLINES: read_jsonlines,
        ct.JSON: read_json,
    }
    return readers[mime]


def _json_batches(source: Any, batch_size: int, name: str | None) -> Iterator[RecordBatch]:
    """A JSON document has no record boundaries to stream on: read it, then slice it."""
    whole = read_json(source, path=name)
    for start in range(0, whole.n_rows, batch_size):
        stop = start + batch_size
        yield RecordBatch(
            whole.features[start:stop],
            None if whole.labels is None else whole.labels[start:stop],
            None if whole.weights is None else whole.weights[start:stop],
        )


def _stream_reader(content_type: str, batch_size: int) -> Callable[[Any, str | None], Iterator[RecordBatch]]:
    mime = ct.canonical_mime(content_type)
    _, params = ct.parse_content_type(content_type)
    if mime == ct.CSV:
        label_size = _label_size(params, content_type)
        return lambda source, name: iter_csv(source, label_size=label_size, batch_size=batch_size, path=name)
    if mime == ct.PARQUET:
        label_size = _label_size(params, content_type)
        return lambda source, name: iter_parquet(source, batch_size=batch_size, label_size=label_size, path=name)
    if mime == ct.LIBSVM:
        return lambda source, name: iter_libsvm(source, batch_size=batch_size, path=name)
    if mime == ct.RECORDIO_PROTOBUF:
        return lambda source, name: iter_recordio_protobuf(source, batch_size=batch_size, path=name)
    if mime == ct.JSONLINES:
        return lambda source, name: iter_jsonlines(source, batch_size=batch_size, path=name)
    return lambda source, name: _json_batches(source, batch_size, name)


def read_channel(path: PathLike, content_type: str, channel: str | None = None) -> RecordBatch:
    """Read every file of a File-mode channel and stack them into one batch.

    Dense files must agree on their feature count; the error names the first file that does not.
    """
    reader = _whole_reader(content_type)
    files = list_channel_files(path, channel)
    batches = [reader(file) for file in files]
    return concat_batches(batches, [str(file) for file in files])


class _WidthCheck:
    """Dense batches of one channel must keep the first batch's feature count."""

    def __init__(self) -> None:
        self.width: int | None = None
        self.labelled: bool | None = None
        self.origin: str | None = None

    def check(self, batch: RecordBatch, name: str | None) -> None:
        if batch.n_rows == 0:
            return
        if self.width is None:
            self.width, self.labelled, self.origin = batch.n_features, batch.labels is not None, name
            return
        if not batch.is_sparse and batch.n_features != self.width:
            raise DataFormatError(
                f"found {batch.n_features} features but {self.origin} has {self.width}", path=name
            )
        if (batch.labels is not None) != self.labelled:
            state = "has labels" if batch.labels is not None else "has no labels"
            raise DataFormatError(f"data {state}, unlike {self.origin}", path=name)


def iter_channel(
    path_or_stream: PathLike | IO[bytes],
    content_type: str,
    batch_size: int = 1000,
    channel: str | None = None,
) -> Iterator[RecordBatch]:
    """Stream a channel batch by batch: a folder's files in order, or one FIFO / stream.

    Pipe-mode FIFOs are opened once and read sequentially in chunks, so memory stays around one
    batch whatever the channel's size.  Parquet is the exception: its index sits at the end of
    the data, so a Parquet stream that cannot seek is held in memory (then still yielded batch by
    batch).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    reader = _stream_reader(content_type, batch_size)
    agreement = _WidthCheck()
    if not isinstance(path_or_stream, str | os.PathLike):
        name = getattr(path_or_stream, "name", None)
        label = name if isinstance(name, str) else None
        for batch in reader(path_or_stream, label):
            agreement.check(batch, label)
            yield batch
        return
    root = Path(path_or_stream)
    sources = [root] if _is_stream_path(root) else list_channel_files(root, channel)
    for source in sources:
        for batch in reader(source, str(source)):
            agreement.check(batch, str(source))
            yield batch
