"""``DataCaptureConfig``: what an endpoint records of its traffic (sagemaker.model_monitor's class).

``model.deploy(..., data_capture_config=DataCaptureConfig(enable_capture=True))`` turns into the
endpoint config's ``DataCaptureConfig`` member; the defaults are the SDK's, so captures land where a
SageMaker notebook expects them (``s3://<default bucket>/model-monitor/data-capture``).
"""

from __future__ import annotations

from typing import Any

from forgeml.sdk.session import Session

MODEL_MONITOR_PREFIX = "model-monitor"
DATA_CAPTURE_PREFIX = "data-capture"
#: the SDK's names for what to capture, and the API's
API_CAPTURE_MODES = {"REQUEST": "Input", "RESPONSE": "Output"}


class DataCaptureConfig:
    """Capture settings for an endpoint; ``_to_request_dict()`` is the CreateEndpointConfig member."""

    API_CAPTURE_MODES = API_CAPTURE_MODES

    def __init__(
        self,
        enable_capture: bool,
        sampling_percentage: int = 20,
        destination_s3_uri: str | None = None,
        kms_key_id: str | None = None,
        capture_options: list[str] | None = None,
        csv_content_types: list[str] | None = None,
        json_content_types: list[str] | None = None,
        sagemaker_session: Session | None = None,
    ) -> None:
        self.enable_capture = enable_capture
        self.sampling_percentage = sampling_percentage
        if destination_s3_uri is None:
            bucket = (sagemaker_session or Session()).default_bucket()
            destination_s3_uri = f"s3://{bucket}/{MODEL_MONITOR_PREFIX}/{DATA_CAPTURE_PREFIX}"
        self.destination_s3_uri = destination_s3_uri
        self.kms_key_id = kms_key_id
        self.capture_options = capture_options or ["REQUEST", "RESPONSE"]
        self.csv_content_types = csv_content_types or ["text/csv"]
        self.json_content_types = json_content_types or ["application/json"]

    def _to_request_dict(self) -> dict[str, Any]:
        """The API shape; an option the SDK does not know (``"InputAndOutput"``) passes through as given."""
        request: dict[str, Any] = {
            "EnableCapture": self.enable_capture,
            "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": self.API_CAPTURE_MODES.get(option.upper(), option)}
                               for option in self.capture_options],
        }
        if self.kms_key_id is not None:
            request["KmsKeyId"] = self.kms_key_id
        request["CaptureContentTypeHeader"] = {"CsvContentTypes": list(self.csv_content_types),
                                               "JsonContentTypes": list(self.json_content_types)}
        return request

    def __repr__(self) -> str:
        return (f"DataCaptureConfig(enable_capture={self.enable_capture!r}, sampling_percentage="
                f"{self.sampling_percentage!r}, destination_s3_uri={self.destination_s3_uri!r})")
