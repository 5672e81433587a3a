"""sagemaker.deserializers's names."""

from forgeml.sdk.deserializers import (
    BaseDeserializer,
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    RecordDeserializer,
    StringDeserializer,
)

__all__ = ["BaseDeserializer", "BytesDeserializer", "CSVDeserializer", "JSONDeserializer", "JSONLinesDeserializer",
           "NumpyDeserializer", "RecordDeserializer", "StringDeserializer"]
