"""``TrainingInput``: one channel of a training job, as sagemaker.inputs.TrainingInput builds it."""

from __future__ import annotations

from typing import Any


class TrainingInput:
    def __init__(
        self,
        s3_data: str,
        distribution: str | None = None,
        compression: str | None = None,
        content_type: str | None = None,
        record_wrapping: str | None = None,
        s3_data_type: str = "S3Prefix",
        input_mode: str | None = None,
        attribute_names: list[str] | None = None,
        shuffle_config: Any = None,
    ) -> None:
        self.config: dict[str, Any] = {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": s3_data_type,
                    "S3Uri": s3_data,
                    "S3DataDistributionType": distribution or "FullyReplicated",
                }
            }
        }
        if compression is not None:
            self.config["CompressionType"] = compression
        if content_type is not None:
            self.config["ContentType"] = content_type
        if record_wrapping is not None:
            self.config["RecordWrapperType"] = record_wrapping
        if input_mode is not None:
            self.config["InputMode"] = input_mode
        if attribute_names is not None:
            self.config["DataSource"]["S3DataSource"]["AttributeNames"] = attribute_names
        if shuffle_config is not None:
            seed = shuffle_config if isinstance(shuffle_config, int) else getattr(shuffle_config, "seed", shuffle_config)
            self.config["ShuffleConfig"] = {"Seed": int(seed)}


class ShuffleConfig:
    def __init__(self, seed: int) -> None:
        self.seed = seed
