"""Reading IP Insights' CSV channels: header-less ``entity, IPv4`` rows, File mode only.

``ChannelInput.read`` yields numeric batches, and these rows are strings, so this is the one
package that parses its own input. Whitespace around fields is stripped (the docs' example has a
space after the comma; UNVERIFIED whether SageMaker strips it). Gzip objects are read through.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forgeml.algorithms.base import ChannelInput
from forgeml.algorithms.ip_insights.encoding import parse_ipv4
from forgeml.errors import ClientError


@dataclass
class Pairs:
    """Observed (entity, IP) pairs: entity ids as strings, IPs as uint32."""

    entities: np.ndarray
    ips: np.ndarray

    def __len__(self) -> int:
        return int(self.ips.shape[0])


def _read_file(path: Path, channel: str) -> Pairs:
    import pandas as pd

    from forgeml.data.sources import read_all

    data, _name = read_all(path)
    if data.size == 0:
        return Pairs(np.empty(0, dtype=object), np.empty(0, dtype=np.uint32))
    try:
        frame = pd.read_csv(
            io.BytesIO(data.tobytes()), header=None, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ClientError(f"could not read {channel} file {path.name} as CSV: {exc}") from exc
    if frame.shape[1] != 2:
        raise ClientError(
            f"IP Insights expects 2 CSV columns (entity id, IPv4 address) but {channel} file {path.name} "
            f"has {frame.shape[1]}"
        )
    entities = frame[0].str.strip().to_numpy(dtype=object)
    empty = np.flatnonzero(entities == "")
    if empty.size:
        raise ClientError(f"empty entity id in {channel} file {path.name}, record {int(empty[0]) + 1}")
    ips, bad = parse_ipv4(frame[1].to_numpy(dtype=object))
    if bad is not None:
        raise ClientError(
            f"'{str(frame[1].iloc[bad]).strip()}' is not an IPv4 address in dotted-decimal form "
            f"({channel} file {path.name}, record {bad + 1})"
        )
    return Pairs(entities, ips)


def read_pairs(channel: ChannelInput) -> Pairs:
    """Every pair of a File-mode channel, files in S3 key order."""
    from forgeml.data.channel import list_channel_files

    if channel.input_mode != "File":
        raise ClientError(
            f"IP Insights supports File input mode only, but the {channel.name} channel uses {channel.input_mode} mode"
        )
    files = list_channel_files(channel.path, channel.name)  # DataFormatError is a ClientError
    parts = [_read_file(path, channel.name) for path in files]
    pairs = Pairs(
        np.concatenate([p.entities for p in parts]) if parts else np.empty(0, dtype=object),
        np.concatenate([p.ips for p in parts]) if parts else np.empty(0, dtype=np.uint32),
    )
    if len(pairs) == 0:
        raise ClientError(f"the {channel.name} channel holds no records")
    return pairs
