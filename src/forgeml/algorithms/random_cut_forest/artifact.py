"""The RCF artifact: the forest's node arrays in ``model_algo-1`` (reference §7.6).

SageMaker serialises its forest into ``model_algo-1`` in an undocumented format (UNVERIFIED). Ours
is an MXNet NDArray list file, the container family's format for arrays, so ``mx.nd.load`` (or
``forgeml.algorithms.common.mxnet_ndarray.load``) reads it: the flat node arrays of ``Forest``
plus ``meta`` = ``[feature_dim, num_trees, num_samples_per_tree]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE, model_file
from forgeml.algorithms.random_cut_forest.forest import Forest

_FIELDS = ("lower", "upper", "mass", "cut_dim", "cut_value", "left", "right", "roots")


def save(forest: Forest, model_dir: Path) -> Path:
    arrays = {name: getattr(forest, name) for name in _FIELDS}
    arrays["meta"] = np.array([forest.feature_dim, forest.num_trees, forest.samples_per_tree], dtype=np.int64)
    path = model_dir / MODEL_FILE
    mxnet_ndarray.save(path, arrays)
    return path


def load(model_dir: Path) -> Forest:
    path = model_file(model_dir)
    arrays = mxnet_ndarray.load_named(path)
    missing = [name for name in (*_FIELDS, "meta") if name not in arrays]
    if missing:
        raise ValueError(f"{path} is not a Random Cut Forest model (missing {', '.join(missing)})")
    feature_dim = int(arrays["meta"][0])
    lower = arrays["lower"].reshape(-1, feature_dim)
    upper = arrays["upper"].reshape(-1, feature_dim)
    return Forest(lower=lower, upper=upper, **{name: arrays[name] for name in _FIELDS[2:]})
