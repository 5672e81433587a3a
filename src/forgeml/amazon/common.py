"""``sagemaker.amazon.common`` names, so ``from forgeml.amazon.common import ...`` replaces it.

Thin re-exports: the implementations live in ``forgeml.data``.
"""

from forgeml.data.protobuf_record import Record
from forgeml.data.recordio import read_recordio
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

__all__ = [
    "Record",
    "read_records",
    "read_recordio",
    "write_numpy_to_dense_tensor",
    "write_spmatrix_to_sparse_tensor",
]
