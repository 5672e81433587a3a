"""forgeml's data layer: every training input format SageMaker's built-in algorithms read.

Formats are CSV, libsvm, Parquet, JSON lines / JSON and RecordIO-protobuf (the SDK's
``write_numpy_to_dense_tensor`` output, byte-compatible in both directions).  Each format module
offers ``read_*`` (a whole file, path / bytes / binary file, gzip seen through), ``iter_*``
(one pass over a stream in bounded memory, for Pipe mode) and ``write_*``.  All readers return a
``RecordBatch`` (float32 features, dense or CSR, plus labels and weights), so algorithms never
see the format.  ``channel`` maps a SageMaker channel (folder or Pipe-mode FIFO plus
``ContentType``) onto those readers.  Malformed input raises ``DataFormatError``, a
``ClientError`` naming the file and 1-based record, which becomes the job's ``FailureReason``.
"""

from forgeml.data.channel import iter_channel, list_channel_files, read_channel
from forgeml.data.content_types import (
    CSV,
    JSON,
    JSONLINES,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    canonical_mime,
    parse_content_type,
)
from forgeml.data.csv_format import iter_csv, read_csv, write_csv
from forgeml.data.dataset import RecordBatch, concat_batches
from forgeml.data.jsonlines import iter_jsonlines, read_json, read_jsonlines, write_jsonlines
from forgeml.data.libsvm import iter_libsvm, read_libsvm, write_libsvm
from forgeml.data.parquet import iter_parquet, read_parquet, write_parquet
from forgeml.data.protobuf_record import Bytes, Float32Tensor, Float64Tensor, Int32Tensor, Record, Value
from forgeml.data.recordio import read_recordio, write_recordio
from forgeml.data.recordio_protobuf import (
    iter_recordio_protobuf,
    read_recordio_protobuf,
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

__all__ = [
    "CSV",
    "JSON",
    "JSONLINES",
    "LIBSVM",
    "PARQUET",
    "RECORDIO_PROTOBUF",
    "Bytes",
    "Float32Tensor",
    "Float64Tensor",
    "Int32Tensor",
    "Record",
    "RecordBatch",
    "Value",
    "canonical_mime",
    "concat_batches",
    "iter_channel",
    "iter_csv",
    "iter_jsonlines",
    "iter_libsvm",
    "iter_parquet",
    "iter_recordio_protobuf",
    "list_channel_files",
    "parse_content_type",
    "read_channel",
    "read_csv",
    "read_json",
    "read_jsonlines",
    "read_libsvm",
    "read_parquet",
    "read_records",
    "read_recordio",
    "read_recordio_protobuf",
    "write_csv",
    "write_jsonlines",
    "write_libsvm",
    "write_numpy_to_dense_tensor",
    "write_parquet",
    "write_recordio",
    "write_spmatrix_to_sparse_tensor",
]
