"""The ``model_algo-1`` artifact: its name and the zip archives several algorithms store in it.

Why it exists: every MXNet-era first-party algorithm writes its model as ``model_algo-1`` in the
model directory, and Linear Learner, Factorization Machines and IP Insights each wrote and read a
zip archive there with their own copy of the same ``zipfile`` code. Factorization Machines and IP
Insights store the MXNet module layout: ``params`` (an MXNet NDArray file, see ``mxnet_ndarray``)
next to ``meta.json``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.algorithms.common import mxnet_ndarray
from forgeml.errors import ClientError

#: the file SageMaker's MXNet-based algorithms write into the model directory (for host algo-1)
MODEL_FILE = "model_algo-1"
PARAMS = "params"
META = "meta.json"


def model_file(model_dir: Path) -> Path:
    """``model_dir/model_algo-1``; FileNotFoundError when the artifact has none."""
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{MODEL_FILE} not found in {model_dir}")
    return path


def load_ndarray_model(model_dir: Path, algorithm: str) -> list[np.ndarray] | dict[str, np.ndarray]:
    """``model_algo-1`` read as an MXNet NDArray file (K-Means, PCA); a ClientError naming the
    algorithm when the artifact has none or it is not such a file."""
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise ClientError(f"the {algorithm} model artifact has no {MODEL_FILE}")
    try:
        return mxnet_ndarray.load(path)
    except mxnet_ndarray.NDArrayFormatError as exc:
        raise ClientError(f"{MODEL_FILE} is not a {algorithm} model: {exc}") from exc


def write_zip(
    path: Path, members: Mapping[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A zip archive holding ``members`` (name -> bytes or text) in the order given."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def read_zip(path: Path) -> dict[str, bytes]:
    """Every member of a zip archive (raises zipfile.BadZipFile for anything else)."""
    with zipfile.ZipFile(io.BytesIO(Path(path).read_bytes())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def save_params_zip(
    path: Path,
    params: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    *,
    extra: Mapping[str, bytes | str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """The MXNet module layout: ``extra`` members first, then ``params`` and ``meta.json``."""
    members = {**(extra or {}), PARAMS: mxnet_ndarray.dumps(params), META: json.dumps(meta)}
    return write_zip(path, members, compression=compression)


def load_params_zip(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The named parameter arrays and the metadata written by ``save_params_zip``."""
    members = read_zip(path)
    return mxnet_ndarray.loads_named(members[PARAMS]), json.loads(members[META])
