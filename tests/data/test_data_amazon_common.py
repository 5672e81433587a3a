"""forgeml.amazon.common stands in for sagemaker.amazon.common."""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp

from forgeml.amazon import common


def test_sdk_names_round_trip() -> None:
    array = np.array([[1.5, 2.0], [3.0, 4.0]], dtype=np.float32)
    buf = io.BytesIO()
    common.write_numpy_to_dense_tensor(buf, array, np.array([1.0, 0.0], dtype=np.float32))
    buf.seek(0)
    records = common.read_records(buf)
    assert [list(r.features["values"].float32_tensor.values) for r in records] == [[1.5, 2.0], [3.0, 4.0]]
    assert [r.label["values"].float32_tensor.values[0] for r in records] == [1.0, 0.0]
    buf.seek(0)
    assert len(list(common.read_recordio(buf))) == 2
    sparse = io.BytesIO()
    common.write_spmatrix_to_sparse_tensor(sparse, sp.csr_matrix(array))
    sparse.seek(0)
    (first, _) = common.read_records(sparse)
    assert list(first.features["values"].float32_tensor.shape) == [2]
    assert isinstance(first, common.Record)
