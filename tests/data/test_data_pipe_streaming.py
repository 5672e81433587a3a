"""Pipe mode: a FIFO carrying far more data than the memory bound is read once, in bounded memory."""

from __future__ import annotations

import io
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from forgeml.data import (
    iter_channel,
    read_recordio_protobuf,
    write_csv,
    write_numpy_to_dense_tensor,
    write_parquet,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")

MB = 1 << 20


class _Feeder(threading.Thread):
    """Writes ``block`` into the FIFO ``repeats`` times, the way SageMaker's pipe agent would."""

    def __init__(self, fifo: Path, block: bytes, repeats: int) -> None:
        super().__init__(daemon=True)
        self.fifo, self.block, self.repeats = fifo, block, repeats
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.fifo, "wb") as handle:
                for _ in range(self.repeats):
                    handle.write(self.block)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc


class _RssSampler(threading.Thread):
    """Peak resident-set growth, sampled, when psutil is installed (tracemalloc is the main check)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)


def _stream(fifo: Path, block: bytes, repeats: int, content_type: str, batch_size: int) -> tuple[int, int, int | None]:
    """``(rows, tracemalloc peak, RSS growth or None)`` for consuming the FIFO with iter_channel."""
    feeder = _Feeder(fifo, block, repeats)
    try:
        sampler: _RssSampler | None = _RssSampler()
    except ImportError:
        sampler = None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        if sampler is not None:
            sampler.start()
        feeder.start()
        rows = 0
        batches: Iterator = iter_channel(fifo, content_type, batch_size=batch_size, channel="train")
        for batch in batches:
            rows += batch.n_rows
            assert batch.features.shape[1] > 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if sampler is not None:
            sampler.stop.set()
            sampler.join()
    feeder.join(timeout=30)
    assert not feeder.is_alive() and feeder.error is None
    return rows, peak, None if sampler is None else sampler.peak - sampler.base


def test_recordio_protobuf_fifo_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, rng.standard_normal((2000, 50)).astype(np.float32), np.ones(2000, np.float32))
    block = buf.getvalue()
    repeats = (200 * MB) // len(block)
    fifo = tmp_path / "train_0"
    os.mkfifo(fifo)
    total = len(block) * repeats
    assert total > 190 * MB

    rows, peak, rss_growth = _stream(fifo, block, repeats, "application/x-recordio-protobuf", batch_size=10_000)

    assert rows == 2000 * repeats
    assert peak < 50 * MB, f"traced peak {peak / MB:.1f} MB for a {total / MB:.0f} MB stream"
    assert peak < total / 4
    if rss_growth is not None:
        assert rss_growth < 50 * MB, f"RSS grew {rss_growth / MB:.1f} MB"


def test_csv_fifo_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    write_csv(buf, rng.standard_normal((5000, 10)).astype(np.float32), rng.integers(0, 2, 5000).astype(np.float32))
    block = buf.getvalue()
    repeats = (40 * MB) // len(block)
    fifo = tmp_path / "train_0"
    os.mkfifo(fifo)
    total = len(block) * repeats

    rows, peak, _ = _stream(fifo, block, repeats, "text/csv", batch_size=5000)

    assert rows == 5000 * repeats
    assert peak < 12 * MB, f"traced peak {peak / MB:.1f} MB for a {total / MB:.0f} MB stream"
    assert peak < total / 3


def test_whole_file_readers_accept_a_fifo_path(tmp_path: Path) -> None:
    buf = io.BytesIO()
    features = np.arange(60, dtype=np.float32).reshape(20, 3)
    write_numpy_to_dense_tensor(buf, features)
    fifo = tmp_path / "validation_0"
    os.mkfifo(fifo)
    feeder = _Feeder(fifo, buf.getvalue(), 1)
    feeder.start()
    batch = read_recordio_protobuf(fifo)
    feeder.join(timeout=30)
    np.testing.assert_array_equal(batch.features, features)


def test_parquet_objects_streamed_back_to_back_through_a_fifo(tmp_path: Path) -> None:
    parts = []
    for i in range(3):
        out = io.BytesIO()
        write_parquet(out, np.full((10 + i, 4), float(i), dtype=np.float32), np.full(10 + i, float(i), dtype=np.float32))
        parts.append(out.getvalue())
    fifo = tmp_path / "train_0"
    os.mkfifo(fifo)
    feeder = _Feeder(fifo, b"".join(parts), 1)
    feeder.start()
    batches = list(iter_channel(fifo, "application/x-parquet", batch_size=8, channel="train"))
    feeder.join(timeout=30)
    assert feeder.error is None
    labels = np.concatenate([b.labels for b in batches if b.labels is not None])
    np.testing.assert_array_equal(labels, [0.0] * 10 + [1.0] * 11 + [2.0] * 12)
