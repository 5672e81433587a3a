"""RecordIO framing: padding, multi-part records, tolerance, and errors that name file and record."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from forgeml.data import read_recordio, write_recordio
from forgeml.data.recordio import MAGIC_BYTES, encode_recordio, iter_framed_blocks, split_records
from forgeml.errors import ClientError, DataFormatError


def _framed(payloads: list[bytes], **kwargs: bool) -> bytes:
    out = io.BytesIO()
    for payload in payloads:
        write_recordio(out, payload, **kwargs)
    return out.getvalue()


def _header(cflag: int, length: int) -> bytes:
    return MAGIC_BYTES + struct.pack("<I", (cflag << 29) | length)


PAYLOADS = [b"", b"a", b"bc", b"def", b"ghij", b"klmno" * 7, bytes(range(256)) * 3]


def test_padding_and_round_trip() -> None:
    data = _framed(PAYLOADS)
    # every frame is 8 + length rounded up to 4
    assert len(data) == sum(8 + (len(p) + 3) // 4 * 4 for p in PAYLOADS)
    assert data[:8] == _header(0, 0)
    assert data[8:16] == _header(0, 1)  # the empty first payload needs no padding
    assert data[16:20] == b"a\0\0\0"  # one byte plus three of padding
    assert data[20:28] == _header(0, 2)
    assert list(read_recordio(io.BytesIO(data))) == PAYLOADS


def test_reads_bytes_paths_and_files(tmp_path: Path) -> None:
    data = _framed(PAYLOADS)
    file = tmp_path / "x.rec"
    file.write_bytes(data)
    assert list(read_recordio(data)) == PAYLOADS
    assert list(read_recordio(file)) == PAYLOADS
    assert list(read_recordio(str(file))) == PAYLOADS
    with open(file, "rb") as handle:
        assert list(read_recordio(handle)) == PAYLOADS


@pytest.mark.parametrize(
    "payload",
    [
        b"abcd" + MAGIC_BYTES + b"efgh",  # magic in the middle
        MAGIC_BYTES + b"tail",  # magic first: an empty first part
        b"head" + MAGIC_BYTES,  # magic last: an empty last part
        MAGIC_BYTES * 3 + b"xy",  # consecutive: empty middle parts
        b"abcd" + MAGIC_BYTES + b"ef" + MAGIC_BYTES,  # an unaligned second occurrence stays inline
    ],
)
def test_multi_part_records_are_joined_with_the_magic_restored(payload: bytes) -> None:
    framed = encode_recordio(payload, split_magic=True)
    flags = []
    pos = 0
    while pos < len(framed):
        word = struct.unpack_from("<I", framed, pos + 4)[0]
        flags.append(word >> 29)
        pos += 8 + ((word & 0x1FFFFFFF) + 3) // 4 * 4
    assert flags[0] == 1 and flags[-1] == 3 and set(flags[1:-1]) <= {2}
    data = _framed([b"before"]) + framed + _framed([b"after"])
    assert list(read_recordio(data)) == [b"before", payload, b"after"]


def test_split_magic_leaves_payloads_without_magic_whole() -> None:
    assert encode_recordio(b"plain", split_magic=True) == encode_recordio(b"plain")


def test_sdk_style_payload_containing_magic_reads_whole() -> None:
    payload = b"abcd" + MAGIC_BYTES + b"efgh"
    assert list(read_recordio(encode_recordio(payload))) == [payload]


def test_fewer_than_four_trailing_bytes_are_ignored() -> None:
    data = _framed([b"one", b"two"]) + b"\x00\x00\x00"
    assert list(read_recordio(data)) == [b"one", b"two"]


def test_last_frame_without_padding_is_accepted() -> None:
    data = _framed([b"one", b"two"])[:-1]  # drop the final padding byte
    assert list(read_recordio(data)) == [b"one", b"two"]


def test_small_chunks_give_the_same_records() -> None:
    payloads = [bytes([i]) * (i * 37 % 301) for i in range(200)]
    data = _framed(payloads)
    for full in (True, False):
        blocks = list(iter_framed_blocks(io.BytesIO(data), max_records=7, chunk_size=13, full_blocks=full))
        if full:
            assert [first for _, first, _ in blocks] == list(range(1, 201, 7))
            assert [count for _, _, count in blocks] == [7] * 28 + [4]
        out: list[bytes] = []
        for block, first, count in blocks:
            records = split_records(block, first_record=first)
            assert len(records) == count
            out.extend(records)
        assert out == payloads


def _error(data: bytes, name: str = "/data/train/part-0.rec") -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        list(read_recordio(data, path=name))
    assert isinstance(info.value, ClientError)
    assert "/data/train/part-0.rec" in str(info.value)
    return info.value


def test_bad_magic_names_the_record() -> None:
    data = bytearray(_framed([b"one", b"two", b"three"]))
    data[24] ^= 0xFF  # third frame's magic (frames are 12, 12, 16 bytes)
    error = _error(bytes(data))
    assert error.record == 3
    assert "record 3" in str(error) and "magic" in str(error)
    assert error.failure_reason().startswith("ClientError: invalid RecordIO magic number")


def test_truncated_payload_names_the_record() -> None:
    data = _framed([b"one", b"two", b"a longer third payload"])[:-6]
    error = _error(data)
    assert error.record == 3 and "truncated" in str(error)


def test_truncated_header_names_the_record() -> None:
    data = _framed([b"one"]) + MAGIC_BYTES + b"\x05\x00"
    error = _error(data)
    assert error.record == 2 and "truncated record header" in str(error)


def test_garbage_after_records_is_bad_magic() -> None:
    error = _error(_framed([b"one"]) + b"GARBAGE!")
    assert error.record == 2


def test_continuation_without_start_is_an_error() -> None:
    data = _framed([b"one"]) + _header(2, 4) + b"abcd"
    error = _error(data)
    assert error.record == 2 and "continuation flag 2" in str(error)


def test_unterminated_multi_part_record_is_an_error() -> None:
    data = _framed([b"one"]) + _header(1, 4) + b"abcd"
    error = _error(data)
    assert error.record == 2 and "not terminated" in str(error)


def test_whole_record_inside_a_multi_part_record_is_an_error() -> None:
    data = _header(1, 4) + b"abcd" + _header(0, 4) + b"efgh"
    assert _error(data).record == 1


def test_oversized_payload_is_refused() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 1 << 29

    with pytest.raises(ValueError, match="2\\*\\*29"):
        encode_recordio(Huge(b"x"))
