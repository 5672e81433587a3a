"""CreateTrainingJob: validate a request and fill in SageMaker's defaults.

The result is the request exactly as Describe echoes it back, plus the resolved *program*: what
will run inside the job (a built-in algorithm, a script-mode entry point, or a command).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from forgeml.algorithms.registry import canonical_name, get_algorithm
from forgeml.errors import ValidationException
from forgeml.service.instance_types import instance_profile
from forgeml.service.names import NAME_PATTERN
from forgeml.service.validation import Checker

ROLE_PATTERN = r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"
URI_PATTERN = r"^(https|s3|file)://([^/]+)?/?(.*)$"
CHANNEL_PATTERN = r"[A-Za-z0-9\.\-_]+"
INPUT_MODES = ("Pipe", "File", "FastFile")
MAX_RUNTIME_LIMIT = 28 * 24 * 3600
DEFAULT_MAX_RUNTIME = 86400

KNOWN_MEMBERS = (
    "TrainingJobName", "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
    "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition", "Tags", "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig",
    "DebugHookConfig", "DebugRuleConfigurations", "TensorBoardOutputConfig", "ExperimentConfig",
    "ProfilerConfig", "ProfilerRuleConfigurations", "Environment", "RetryStrategy", "RemoteDebugConfig",
    "InfraCheckConfig", "SessionChainingConfig",
)


@dataclass(frozen=True)
class Program:
    """What runs inside the job.

    ``builtin``: a built-in algorithm by registry name. ``script``: the sagemaker-training toolkit
    contract (``sagemaker_program`` + ``sagemaker_submit_directory`` hyperparameters). ``command``:
    ``ContainerEntrypoint`` + ``ContainerArguments`` run as a local command.
    """

    kind: str
    algorithm: str | None = None


def resolve_program(spec: dict[str, Any], hyperparameters: dict[str, str]) -> Program:
    if "sagemaker_program" in hyperparameters:
        return Program("script")
    image = spec.get("TrainingImage") or spec.get("AlgorithmName") or ""
    name = canonical_name(image) if image else None
    if name is not None:
        return Program("builtin", name)
    if spec.get("ContainerEntrypoint"):
        return Program("command")
    raise ValidationException(
        f"Value '{image}' at 'algorithmSpecification.trainingImage' failed to satisfy constraint: "
        "Member must name a built-in algorithm image (see forgeml.image_uris.retrieve), or the job must be "
        "script mode (hyperparameter sagemaker_program, set by Estimator(entry_point=...)), or set "
        "ContainerEntrypoint to a command to run"
    )


def normalize_create_request(request: dict[str, Any]) -> tuple[dict[str, Any], Program]:
    """Check every member (all errors reported together) and return the filled-in request."""
    check = Checker()
    if not isinstance(request, dict):
        raise ValidationException("1 validation error detected: the request must be a JSON object")
    check.unknown_members(request, "", KNOWN_MEMBERS)
    check.string(request.get("TrainingJobName"), "TrainingJobName", required=True, min_len=1, max_len=63,
                 pattern=NAME_PATTERN)
    check.string(request.get("RoleArn"), "RoleArn", required=True, min_len=20, max_len=2048, pattern=ROLE_PATTERN)

    hyperparameters = dict(check.mapping(request.get("HyperParameters"), "HyperParameters",
                                         max_entries=100, key_len=256, value_len=2500))
    spec = dict(check.structure(request.get("AlgorithmSpecification"), "AlgorithmSpecification", required=True))
    _check_algorithm_spec(check, spec)
    channels = [_normalize_channel(check, c, i, spec.get("TrainingInputMode") or "File")
                for i, c in enumerate(check.items(request.get("InputDataConfig"), "InputDataConfig", max_items=20))]
    names = [c.get("ChannelName") for c in channels]
    for name in {n for n in names if names.count(n) > 1}:
        check.fail(name, "InputDataConfig.channelName", "be unique within the request")

    output = dict(check.structure(request.get("OutputDataConfig"), "OutputDataConfig", required=True))
    if output:
        check.string(output.get("S3OutputPath"), "OutputDataConfig.S3OutputPath", required=True, max_len=1024,
                     pattern=URI_PATTERN)
        check.enum(output.get("CompressionType"), "OutputDataConfig.CompressionType", ("GZIP", "NONE"))
        output.setdefault("CompressionType", "GZIP")
        output.setdefault("KmsKeyId", "")  # SageMaker echoes it empty when unset (the sagemaker SDK reads it)

    resources = dict(check.structure(request.get("ResourceConfig"), "ResourceConfig", required=True))
    if resources:
        check.string(resources.get("InstanceType"), "ResourceConfig.InstanceType", required=True)
        check.integer(resources.get("InstanceCount"), "ResourceConfig.InstanceCount", required=True, minimum=1)
        check.integer(resources.get("VolumeSizeInGB"), "ResourceConfig.VolumeSizeInGB", minimum=1)
        resources.setdefault("VolumeSizeInGB", 30)

    stopping = dict(check.structure(request.get("StoppingCondition"), "StoppingCondition"))
    check.integer(stopping.get("MaxRuntimeInSeconds"), "StoppingCondition.MaxRuntimeInSeconds", minimum=1,
                  maximum=MAX_RUNTIME_LIMIT)
    check.integer(stopping.get("MaxWaitTimeInSeconds"), "StoppingCondition.MaxWaitTimeInSeconds", minimum=1)
    stopping.setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)

    checkpoint = request.get("CheckpointConfig")
    if checkpoint is not None:
        checkpoint = dict(check.structure(checkpoint, "CheckpointConfig"))
        check.string(checkpoint.get("S3Uri"), "CheckpointConfig.S3Uri", required=True, max_len=1024,
                     pattern=URI_PATTERN)
        check.string(checkpoint.get("LocalPath"), "CheckpointConfig.LocalPath", max_len=4096)

    environment = check.mapping(request.get("Environment"), "Environment", max_entries=100, key_len=512,
                                value_len=512, key_pattern=r"[a-zA-Z_][a-zA-Z0-9_]*")
    tags = check.items(request.get("Tags"), "Tags", max_items=50)
    for index, tag in enumerate(tags):
        tag = check.structure(tag, f"Tags.{index + 1}")
        check.string(tag.get("Key"), f"Tags.{index + 1}.Key", required=True, min_len=1, max_len=128)
        check.string(tag.get("Value"), f"Tags.{index + 1}.Value", max_len=256)
    for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"):
        check.boolean(request.get(flag), flag)
    check.raise_if_any()

    # Rules that need the well-formed request: instance type, program, algorithm specifics.
    instance_profile(resources["InstanceType"])
    program = resolve_program(spec, hyperparameters)
    if program.kind == "builtin":
        _check_builtin(spec, hyperparameters, channels, program)
    elif program.kind == "script":
        _check_script(hyperparameters)

    normalized: dict[str, Any] = {
        "TrainingJobName": request["TrainingJobName"],
        "HyperParameters": hyperparameters,
        "AlgorithmSpecification": spec,
        "RoleArn": request["RoleArn"],
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": bool(request.get("EnableNetworkIsolation", False)),
        "EnableInterContainerTrafficEncryption": bool(request.get("EnableInterContainerTrafficEncryption", False)),
        "EnableManagedSpotTraining": bool(request.get("EnableManagedSpotTraining", False)),
    }
    if checkpoint is not None:
        checkpoint.setdefault("LocalPath", "/opt/ml/checkpoints/")
        normalized["CheckpointConfig"] = checkpoint
    if environment:
        normalized["Environment"] = dict(environment)
    if tags:
        normalized["Tags"] = tags
    for optional in ("VpcConfig", "ExperimentConfig", "RetryStrategy", "DebugHookConfig", "TensorBoardOutputConfig"):
        if request.get(optional) is not None:
            normalized[optional] = request[optional]
    return normalized, program


def _check_algorithm_spec(check: Checker, spec: dict[str, Any]) -> None:
    if not spec:
        return
    check.enum(spec.get("TrainingInputMode"), "AlgorithmSpecification.TrainingInputMode", INPUT_MODES, required=True)
    image, algorithm = spec.get("TrainingImage"), spec.get("AlgorithmName")
    check.string(image, "AlgorithmSpecification.TrainingImage", max_len=255)
    check.string(algorithm, "AlgorithmSpecification.AlgorithmName", min_len=1, max_len=170)
    if bool(image) == bool(algorithm):
        check.fail(image or algorithm, "AlgorithmSpecification",
                   "specify exactly one of TrainingImage and AlgorithmName")
    definitions = check.items(spec.get("MetricDefinitions"), "AlgorithmSpecification.MetricDefinitions", max_items=40)
    for index, definition in enumerate(definitions):
        path = f"AlgorithmSpecification.MetricDefinitions.{index + 1}"
        definition = check.structure(definition, path)
        check.string(definition.get("Name"), f"{path}.Name", required=True, min_len=1, max_len=255)
        if check.string(definition.get("Regex"), f"{path}.Regex", required=True, min_len=1, max_len=500):
            try:
                compiled = re.compile(definition["Regex"])
            except re.error as exc:
                check.fail(definition["Regex"], f"{path}.Regex", f"be a valid regular expression ({exc})")
            else:
                if compiled.groups < 1:
                    check.fail(definition["Regex"], f"{path}.Regex", "have a capture group for the metric value")
    for key in ("ContainerEntrypoint", "ContainerArguments"):
        for index, item in enumerate(check.items(spec.get(key), f"AlgorithmSpecification.{key}", max_items=100)):
            check.string(item, f"AlgorithmSpecification.{key}.{index + 1}", max_len=256)


def _normalize_channel(check: Checker, channel: Any, index: int, default_mode: str) -> dict[str, Any]:
    path = f"InputDataConfig.{index + 1}"
    channel = dict(check.structure(channel, path))
    check.string(channel.get("ChannelName"), f"{path}.ChannelName", required=True, min_len=1, max_len=64,
                 pattern=CHANNEL_PATTERN)
    source = check.structure(channel.get("DataSource"), f"{path}.DataSource", required=True)
    s3 = dict(check.structure(source.get("S3DataSource"), f"{path}.DataSource.S3DataSource",
                              required=bool(source)))
    if s3:
        check.enum(s3.get("S3DataType"), f"{path}.DataSource.S3DataSource.S3DataType",
                   ("ManifestFile", "S3Prefix", "AugmentedManifestFile"), required=True)
        check.string(s3.get("S3Uri"), f"{path}.DataSource.S3DataSource.S3Uri", required=True, max_len=1024,
                     pattern=URI_PATTERN)
        check.enum(s3.get("S3DataDistributionType"), f"{path}.DataSource.S3DataSource.S3DataDistributionType",
                   ("FullyReplicated", "ShardedByS3Key"))
        s3.setdefault("S3DataDistributionType", "FullyReplicated")
        channel["DataSource"] = {"S3DataSource": s3}
    check.string(channel.get("ContentType"), f"{path}.ContentType", max_len=256)
    check.enum(channel.get("CompressionType"), f"{path}.CompressionType", ("None", "Gzip"))
    check.enum(channel.get("RecordWrapperType"), f"{path}.RecordWrapperType", ("None", "RecordIO"))
    check.enum(channel.get("InputMode"), f"{path}.InputMode", INPUT_MODES)
    shuffle = channel.get("ShuffleConfig")
    if shuffle is not None:
        check.integer(check.structure(shuffle, f"{path}.ShuffleConfig").get("Seed"), f"{path}.ShuffleConfig.Seed",
                      required=True)
    channel.setdefault("CompressionType", "None")
    channel.setdefault("RecordWrapperType", "None")
    mode = channel.get("InputMode") or default_mode
    if s3.get("S3DataType") == "AugmentedManifestFile" and mode != "Pipe":
        check.fail(mode, f"{path}.InputMode", "be Pipe when S3DataType is AugmentedManifestFile")
    if channel.get("CompressionType") == "Gzip" and mode == "File":
        check.fail("Gzip", f"{path}.CompressionType", "be None in File mode (Gzip is a Pipe mode option)")
    return channel


def _check_builtin(spec: dict[str, Any], hyperparameters: dict[str, str], channels: list[dict[str, Any]],
                   program: Program) -> None:
    from forgeml.algorithms.harness import resolve_content_type
    from forgeml.errors import ClientError

    algorithm = get_algorithm(program.algorithm or "")
    algorithm.validate_hyperparameters(hyperparameters)
    given = {c["ChannelName"]: c for c in channels}
    for channel_spec in algorithm.channels:
        if channel_spec.required and channel_spec.name not in given:
            raise ValidationException(
                f"1 validation error detected: Value at 'inputDataConfig' failed to satisfy constraint: "
                f"{algorithm.name} requires a '{channel_spec.name}' channel"
            )
    default_mode = spec.get("TrainingInputMode", "File")
    for name, channel in given.items():
        try:
            resolve_content_type(algorithm, name, channel.get("ContentType"))
        except ClientError as exc:
            raise ValidationException(f"1 validation error detected: Value '{channel.get('ContentType')}' at "
                                      f"'inputDataConfig.{name}.contentType' failed to satisfy constraint: {exc.message}") from None
        mode = channel.get("InputMode") or default_mode
        channel_spec = next(c for c in algorithm.channels if c.name == name)
        if mode == "FastFile":
            mode = "File"
        if mode not in channel_spec.input_modes:
            raise ValidationException(
                f"1 validation error detected: Value '{mode}' at 'inputDataConfig.{name}.inputMode' failed to "
                f"satisfy constraint: {algorithm.name} supports {' and '.join(channel_spec.input_modes)} mode for channel '{name}'"
            )
    # SageMaker attaches the algorithm's own metric definitions to built-in jobs.
    user = {d["Name"]: d for d in spec.get("MetricDefinitions", [])}
    spec["MetricDefinitions"] = [*algorithm.metric_definitions, *(d for n, d in user.items()
                                                                  if n not in algorithm.metric_names())]


def _check_script(hyperparameters: dict[str, str]) -> None:
    if "sagemaker_submit_directory" not in hyperparameters:
        raise ValidationException(
            "1 validation error detected: Value at 'hyperParameters.sagemaker_submit_directory' failed to satisfy "
            "constraint: script mode needs the code location (Estimator(entry_point=..., source_dir=...) sets it)"
        )
