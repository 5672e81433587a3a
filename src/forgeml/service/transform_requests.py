"""CreateTransformJob: check every member with AWS's messages, and fill in Describe's defaults.

The stored request is what the caller sent, checked: the runner needs to know which settings were
given (batch transform passes ``SAGEMAKER_BATCH_STRATEGY`` and ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``
to the container only then). ``with_defaults`` is what DescribeTransformJob shows.
"""

from __future__ import annotations

import copy
from typing import Any

from forgeml.errors import ValidationException
from forgeml.service.instance_types import INSTANCE_TYPES
from forgeml.service.models import MODEL_NAME_PATTERN
from forgeml.service.names import NAME_PATTERN
from forgeml.service.training_requests import URI_PATTERN
from forgeml.service.validation import Checker
from forgeml.transform import jsonpath
from forgeml.transform.records import record_format

KNOWN_MEMBERS = ("TransformJobName", "ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB",
                 "BatchStrategy", "Environment", "TransformInput", "TransformOutput", "DataCaptureConfig",
                 "TransformResources", "DataProcessing", "Tags", "ExperimentConfig")
INPUT_MEMBERS = ("DataSource", "ContentType", "CompressionType", "SplitType")
OUTPUT_MEMBERS = ("S3OutputPath", "Accept", "AssembleWith", "KmsKeyId")
RESOURCE_MEMBERS = ("InstanceType", "InstanceCount", "VolumeKmsKeyId", "TransformAmiVersion")
PROCESSING_MEMBERS = ("InputFilter", "OutputFilter", "JoinSource")
CLIENT_MEMBERS = ("InvocationsTimeoutInSeconds", "InvocationsMaxRetries")
CAPTURE_MEMBERS = ("DestinationS3Uri", "KmsKeyId", "GenerateInferenceId")

BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
DATA_TYPES = ("ManifestFile", "S3Prefix", "AugmentedManifestFile")
MAX_PAYLOAD_LIMIT = 100

DEFAULT_MAX_PAYLOAD_IN_MB = 6
DEFAULT_MAX_CONCURRENT_TRANSFORMS = 1
DEFAULT_BATCH_STRATEGY = "MultiRecord"
DEFAULT_CLIENT_CONFIG = {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 3}
DEFAULT_PROCESSING = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}


def normalize_transform_request(request: Any) -> dict[str, Any]:
    """The request checked (every broken rule reported together) and copied; raises ValidationException."""
    if not isinstance(request, dict):
        raise ValidationException("1 validation error detected: the request must be a JSON object")
    check = Checker()
    check.unknown_members(request, "", KNOWN_MEMBERS)
    check.string(request.get("TransformJobName"), "TransformJobName", required=True, min_len=1, max_len=63,
                 pattern=NAME_PATTERN)
    check.string(request.get("ModelName"), "ModelName", required=True, max_len=63, pattern=MODEL_NAME_PATTERN)
    _check_limits(check, request)
    check.enum(request.get("BatchStrategy"), "BatchStrategy", BATCH_STRATEGIES)
    check.mapping(request.get("Environment"), "Environment", max_entries=16, key_len=1024, value_len=10240,
                  key_pattern=r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")
    transform_input = _check_input(check, request.get("TransformInput"))
    _check_output(check, request.get("TransformOutput"))
    _check_resources(check, request.get("TransformResources"))
    _check_processing(check, request.get("DataProcessing"), transform_input)
    _check_capture(check, request.get("DataCaptureConfig"))
    for index, tag in enumerate(check.items(request.get("Tags"), "Tags", max_items=50)):
        tag = check.structure(tag, f"Tags.{index + 1}")
        check.string(tag.get("Key"), f"Tags.{index + 1}.Key", required=True, min_len=1, max_len=128)
        check.string(tag.get("Value"), f"Tags.{index + 1}.Value", max_len=256)
    check.structure(request.get("ExperimentConfig"), "ExperimentConfig")
    check.raise_if_any()
    return copy.deepcopy({key: value for key, value in request.items() if value is not None})


def _check_limits(check: Checker, request: dict[str, Any]) -> None:
    concurrent, payload = request.get("MaxConcurrentTransforms"), request.get("MaxPayloadInMB")
    concurrent_ok = check.integer(concurrent, "MaxConcurrentTransforms", minimum=0)
    payload_ok = check.integer(payload, "MaxPayloadInMB", minimum=0, maximum=MAX_PAYLOAD_LIMIT)
    if payload_ok and payload == 0:
        check.fail(0, "MaxPayloadInMB", "be greater than 0 here: 0 asks for HTTP chunked requests of unlimited size, "
                                        "which forgeml does not send (give a size of at least 1 MB)")
    if concurrent_ok and payload_ok and concurrent:
        effective = payload if payload is not None else DEFAULT_MAX_PAYLOAD_IN_MB
        if concurrent * effective > MAX_PAYLOAD_LIMIT:
            check.fail(concurrent, "MaxConcurrentTransforms",
                       f"keep MaxConcurrentTransforms * MaxPayloadInMB ({concurrent} * {effective}) less than or "
                       f"equal to {MAX_PAYLOAD_LIMIT}")
    client = request.get("ModelClientConfig")
    if client is not None:
        client = check.structure(client, "ModelClientConfig")
        check.unknown_members(client, "ModelClientConfig", CLIENT_MEMBERS)
        check.integer(client.get("InvocationsTimeoutInSeconds"), "ModelClientConfig.InvocationsTimeoutInSeconds",
                      minimum=1, maximum=3600)
        check.integer(client.get("InvocationsMaxRetries"), "ModelClientConfig.InvocationsMaxRetries",
                      minimum=0, maximum=3)


def _check_input(check: Checker, value: Any) -> dict[str, Any]:
    transform_input = check.structure(value, "TransformInput", required=True)
    if not isinstance(value, dict):
        return {}
    check.unknown_members(transform_input, "TransformInput", INPUT_MEMBERS)
    source = check.structure(transform_input.get("DataSource"), "TransformInput.DataSource", required=True)
    if isinstance(transform_input.get("DataSource"), dict):
        check.unknown_members(source, "TransformInput.DataSource", ("S3DataSource",))
        path = "TransformInput.DataSource.S3DataSource"
        s3 = check.structure(source.get("S3DataSource"), path, required=True)
        if isinstance(source.get("S3DataSource"), dict):
            check.unknown_members(s3, path, ("S3DataType", "S3Uri"))
            data_type = s3.get("S3DataType")
            if check.enum(data_type, f"{path}.S3DataType", DATA_TYPES, required=True) \
                    and data_type == "AugmentedManifestFile":
                check.fail(data_type, f"{path}.S3DataType", "be S3Prefix or ManifestFile: batch transform does not "
                                                            "read AugmentedManifestFile input")
            check.string(s3.get("S3Uri"), f"{path}.S3Uri", required=True, max_len=1024, pattern=URI_PATTERN)
    check.string(transform_input.get("ContentType"), "TransformInput.ContentType", max_len=256)
    check.enum(transform_input.get("CompressionType"), "TransformInput.CompressionType", ("None", "Gzip"))
    check.enum(transform_input.get("SplitType"), "TransformInput.SplitType", SPLIT_TYPES)
    return dict(transform_input)


def _check_output(check: Checker, value: Any) -> None:
    output = check.structure(value, "TransformOutput", required=True)
    if not isinstance(value, dict):
        return
    check.unknown_members(output, "TransformOutput", OUTPUT_MEMBERS)
    check.string(output.get("S3OutputPath"), "TransformOutput.S3OutputPath", required=True, max_len=1024,
                 pattern=URI_PATTERN)
    check.string(output.get("Accept"), "TransformOutput.Accept", max_len=256)
    check.enum(output.get("AssembleWith"), "TransformOutput.AssembleWith", ("None", "Line"))
    check.string(output.get("KmsKeyId"), "TransformOutput.KmsKeyId", max_len=2048)


def _check_resources(check: Checker, value: Any) -> None:
    resources = check.structure(value, "TransformResources", required=True)
    if not isinstance(value, dict):
        return
    check.unknown_members(resources, "TransformResources", RESOURCE_MEMBERS)
    instance_type = resources.get("InstanceType")
    if check.string(instance_type, "TransformResources.InstanceType", required=True) and \
            instance_type not in INSTANCE_TYPES:
        check.fail(instance_type, "TransformResources.InstanceType",
                   "be a known instance type (for example ml.m5.large, ml.c5.xlarge, ml.g4dn.xlarge)")
    check.integer(resources.get("InstanceCount"), "TransformResources.InstanceCount", required=True, minimum=1)
    check.string(resources.get("VolumeKmsKeyId"), "TransformResources.VolumeKmsKeyId", max_len=2048)


def _check_processing(check: Checker, value: Any, transform_input: dict[str, Any]) -> None:
    if value is None:
        return
    processing = check.structure(value, "DataProcessing")
    check.unknown_members(processing, "DataProcessing", PROCESSING_MEMBERS)
    for member in ("InputFilter", "OutputFilter"):
        expression = processing.get(member)
        if check.string(expression, f"DataProcessing.{member}", max_len=63) and expression:
            try:
                jsonpath.parse(expression)
            except jsonpath.JsonPathError as exc:
                check.fail(expression, f"DataProcessing.{member}", f"be a supported JSONPath expression ({exc})")
    check.enum(processing.get("JoinSource"), "DataProcessing.JoinSource", ("Input", "None"))
    filtered = processing.get("InputFilter") not in (None, "", "$")
    if (filtered or processing.get("JoinSource") == "Input") and "DataSource" in transform_input \
            and record_format(transform_input.get("ContentType")) is None:
        check.fail(transform_input.get("ContentType"), "TransformInput.ContentType",
                   "be text/csv, application/json or application/jsonlines when DataProcessing has an InputFilter "
                   "or JoinSource Input (filters and joins read CSV and JSON records only)")


def _check_capture(check: Checker, value: Any) -> None:
    if value is None:
        return
    capture = check.structure(value, "DataCaptureConfig")
    check.unknown_members(capture, "DataCaptureConfig", CAPTURE_MEMBERS)
    check.string(capture.get("DestinationS3Uri"), "DataCaptureConfig.DestinationS3Uri", required=True, max_len=512,
                 pattern=URI_PATTERN)
    check.string(capture.get("KmsKeyId"), "DataCaptureConfig.KmsKeyId", max_len=2048)
    check.boolean(capture.get("GenerateInferenceId"), "DataCaptureConfig.GenerateInferenceId")


def with_defaults(request: dict[str, Any]) -> dict[str, Any]:
    """The request as DescribeTransformJob echoes it: every default SageMaker fills in, filled in."""
    filled = copy.deepcopy(request)
    filled.setdefault("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_IN_MB)
    filled.setdefault("BatchStrategy", DEFAULT_BATCH_STRATEGY)
    if not filled.get("MaxConcurrentTransforms"):
        filled["MaxConcurrentTransforms"] = DEFAULT_MAX_CONCURRENT_TRANSFORMS
    filled["ModelClientConfig"] = {**DEFAULT_CLIENT_CONFIG, **filled.get("ModelClientConfig", {})}
    filled["DataProcessing"] = {**DEFAULT_PROCESSING, **{k: v for k, v in filled.get("DataProcessing", {}).items()
                                                         if v not in (None, "")}}
    filled.setdefault("Environment", {})
    transform_input = filled["TransformInput"]
    transform_input.setdefault("CompressionType", "None")
    transform_input.setdefault("SplitType", "None")
    filled["TransformOutput"].setdefault("AssembleWith", "None")
    filled.pop("Tags", None)
    return filled
