"""Entity ids and IPv4 addresses as the integer ids the network looks up.

Entities are hashed into ``num_entity_vectors`` buckets. SageMaker's hash function is not
documented (UNVERIFIED); BLAKE2b of the UTF-8 id is used because it is stable across processes and
platforms (Python's ``hash`` is salted per process), so training and serving always agree.

An IPv4 address is represented by its prefixes, so nearby addresses share parameters: its /8,
its /16 (both looked up exactly) and its /24 (hashed into ``SLASH24_BUCKETS`` rows). The three
rows of one table are summed into the IP's input embedding. SageMaker only says its IP encoder is
"prefix-aware" (UNVERIFIED beyond that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

SLASH8_ROWS = 256
SLASH16_ROWS = 1 << 16
SLASH24_BITS = 15
SLASH24_BUCKETS = 1 << SLASH24_BITS
IP_TABLE_ROWS = SLASH8_ROWS + SLASH16_ROWS + SLASH24_BUCKETS
_KNUTH = np.uint64(2654435761)


def entity_buckets(entities: Sequence[str] | np.ndarray, num_entity_vectors: int) -> np.ndarray:
    """The embedding row of each entity id (int64), hashing each distinct id once."""
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(entities, dtype=object))
    table = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(u).encode("utf-8"), digest_size=8).digest(), "little")
            % num_entity_vectors
            for u in uniques
        ),
        dtype=np.int64,
        count=len(uniques),
    )
    return table[codes]


def parse_ipv4(addresses: Sequence[str] | np.ndarray) -> tuple[np.ndarray, int | None]:
    """``(uint32 addresses, index of the first invalid entry or None)``; invalid entries read as 0.

    Vectorised with Arrow's string kernels: validate the dotted-quad shape, split, cast, check.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(np.asarray(addresses, dtype=object), type=pa.string(), from_pandas=True))
    shaped = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"), False)
    safe = pc.if_else(shaped, text, pa.scalar("0.0.0.0"))
    octets = pc.cast(pc.list_flatten(pc.split_pattern(safe, ".")), pa.int64()).to_numpy().reshape(-1, 4)
    valid = shaped.to_numpy(zero_copy_only=False) & (octets <= 255).all(axis=1)
    octets = np.where(valid[:, None], octets, 0)
    packed = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    bad = np.flatnonzero(~valid)
    return packed.astype(np.uint32), (int(bad[0]) if bad.size else None)


def ip_prefix_rows(ips: np.ndarray) -> np.ndarray:
    """The three IP-table rows (/8, /16, hashed /24) of each address, shape (n, 3)."""
    ips = ips.astype(np.uint64)
    slash8 = ips >> np.uint64(24)
    slash16 = ips >> np.uint64(16)
    slash24 = ips >> np.uint64(8)
    hashed = ((slash24 * _KNUTH) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - SLASH24_BITS)
    rows = np.stack(
        [slash8, SLASH8_ROWS + slash16, SLASH8_ROWS + SLASH16_ROWS + hashed],
        axis=1,
    )
    return rows.astype(np.int64)


def random_ipv4(rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniformly random IPv4 addresses: the random negative samples."""
    return rng.integers(0, 1 << 32, size=count, dtype=np.uint64).astype(np.uint32)
