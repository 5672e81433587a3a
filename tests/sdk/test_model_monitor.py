"""DataCaptureConfig: the request the SDK builds (defaults included), and its wiring into an endpoint:
DescribeEndpoint's capture summary, captured records, and turning capture off and on again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from forgeml import DataCaptureConfig, Session
from forgeml.deserializers import JSONDeserializer
from forgeml.image_uris import retrieve
from forgeml.sdk.model import Model
from forgeml.serializers import CSVSerializer

DEFAULT_DESTINATION = "s3://sagemaker-us-east-1-000000000000/model-monitor/data-capture"


def test_defaults_are_the_sdks(session: Session) -> None:
    config = DataCaptureConfig(enable_capture=True, sagemaker_session=session)
    assert (config.sampling_percentage, config.capture_options) == (20, ["REQUEST", "RESPONSE"])
    assert config._to_request_dict() == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": DEFAULT_DESTINATION,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }


def test_every_option_reaches_the_request(session: Session) -> None:
    config = DataCaptureConfig(False, sampling_percentage=100, destination_s3_uri="s3://audit/capture",
                               kms_key_id="alias/capture", capture_options=["response", "InputAndOutput"],
                               csv_content_types=["text/csv", "application/x-csv"],
                               json_content_types=["application/jsonlines"], sagemaker_session=session)
    assert config._to_request_dict() == {
        "EnableCapture": False,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://audit/capture",
        "CaptureOptions": [{"CaptureMode": "Output"}, {"CaptureMode": "InputAndOutput"}],
        "KmsKeyId": "alias/capture",
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv", "application/x-csv"],
                                     "JsonContentTypes": ["application/jsonlines"]},
    }
    assert repr(config) == ("DataCaptureConfig(enable_capture=False, sampling_percentage=100, "
                            "destination_s3_uri='s3://audit/capture')")


def test_an_endpoint_config_keeps_the_request(session: Session) -> None:
    Model(retrieve("linear-learner"), "s3://models/ll/model.tar.gz", name="ll", sagemaker_session=session).create()
    request = DataCaptureConfig(True, sampling_percentage=50, sagemaker_session=session)._to_request_dict()
    assert session.create_endpoint_config("captured", "ll", 1, "ml.m5.large", data_capture_config_dict=request) \
        == "captured"
    described = session.describe_endpoint_config("captured")
    assert described["DataCaptureConfig"] == request
    assert described["ProductionVariants"] == [{"ModelName": "ll", "VariantName": "AllTraffic",
                                                "InitialVariantWeight": 1.0, "InitialInstanceCount": 1,
                                                "InstanceType": "ml.m5.large"}]


def wait_for_records(session: Session, destination: str, endpoint: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    from forgeml.hosting.capture import read_capture_records

    deadline = time.monotonic() + timeout
    while True:
        records = read_capture_records(session.platform.artifacts, destination, endpoint)
        if records:
            return records
        if time.monotonic() > deadline:
            pytest.fail(f"no capture records for {endpoint} under {destination} within {timeout:g} s")
        time.sleep(0.1)


def test_deploy_with_capture_then_disable_and_enable(session: Session, ll_tarball: Path) -> None:
    model_data = f"s3://{session.default_bucket()}/ll/model.tar.gz"
    session.platform.artifacts.put_file(ll_tarball, model_data)
    capture = DataCaptureConfig(True, sampling_percentage=100, destination_s3_uri="s3://audit/capture",
                                sagemaker_session=session)
    predictor = Model(retrieve("linear-learner"), model_data, sagemaker_session=session).deploy(
        1, "ml.m5.large", serializer=CSVSerializer(), deserializer=JSONDeserializer(), endpoint_name="watched",
        data_capture_config=capture)
    try:
        assert session.describe_endpoint("watched")["DataCaptureConfig"] == {
            "EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
            "DestinationS3Uri": "s3://audit/capture"}
        answer = predictor.predict([2.0, -1.0, 0.5, 0.0], inference_id="order-17")
        record = wait_for_records(session, "s3://audit/capture", "watched")[0]
        assert record["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                          "data": "2.0,-1.0,0.5,0.0", "encoding": "CSV"}
        output = record["captureData"]["endpointOutput"]
        assert (output["mode"], output["encoding"]) == ("OUTPUT", "JSON")
        assert json.loads(output["data"]) == answer and answer["predictions"][0]["predicted_label"] == 1
        assert record["eventMetadata"]["inferenceId"] == "order-17"

        predictor.disable_data_capture()
        summary = session.describe_endpoint("watched")["DataCaptureConfig"]
        assert (summary["EnableCapture"], summary["CaptureStatus"]) == (False, "Stopped")

        predictor.enable_data_capture()
        assert session.describe_endpoint("watched")["DataCaptureConfig"] == {
            "EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 20,
            "DestinationS3Uri": DEFAULT_DESTINATION}
        config_name = session.describe_endpoint("watched")["EndpointConfigName"]
        assert session.describe_endpoint_config(config_name)["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    finally:
        predictor.delete_endpoint()
        predictor.delete_model()
