"""sagemaker.serializers's names."""

from forgeml.sdk.serializers import (
    BaseSerializer,
    CSVSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    NumpySerializer,
    RecordSerializer,
)

__all__ = ["BaseSerializer", "CSVSerializer", "IdentitySerializer", "JSONLinesSerializer", "JSONSerializer",
           "NumpySerializer", "RecordSerializer"]
