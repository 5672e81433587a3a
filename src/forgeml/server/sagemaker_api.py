"""SageMaker's control plane over JSON 1.1 (``X-Amz-Target: SageMaker.<Operation>``).

One table maps each operation to one call of the service layer, called the way the in-process
client (``forgeml.sdk.client.SageMakerClient``) calls it: Create and Update operations pass the
request whole, List operations pass its members as keyword parameters, and Describe, Stop and
Delete pass the resource's name. The name is checked here first (present, a string, SageMaker's
length and pattern), since the services take it as a bare argument; everything else is the
services' to judge.

``ListTags`` is ``forgeml.service.tags.TagService``'s: the Tags each resource was created with.
Tags cannot be changed after creation: ``AddTags`` and ``DeleteTags`` are refused like every other
operation forgeml does not serve, naming the operation.
"""

from __future__ import annotations

from typing import Any

from forgeml.server.json_protocol import JsonService, Operation
from forgeml.service.names import NAME_PATTERN
from forgeml.service.validation import Checker

TARGET_PREFIX = "SageMaker"
TUNING_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"


def resource_name(request: dict[str, Any], member: str, *, max_len: int = 63, pattern: str = NAME_PATTERN) -> str:
    """The request's one member, a resource name, checked as SageMaker checks it."""
    check = Checker()
    check.unknown_members(request, "", (member,))
    check.string(request.get(member), member, required=True, min_len=1, max_len=max_len, pattern=pattern)
    check.raise_if_any()
    return str(request[member])


def _tuning_name(request: dict[str, Any]) -> str:
    return resource_name(request, "HyperParameterTuningJobName", max_len=32, pattern=TUNING_NAME_PATTERN)


# -- the table -----------------------------------------------------------------------------------

OPERATIONS: dict[str, Operation] = {
    # training jobs
    "CreateTrainingJob": lambda p, r: p.training_jobs.create_training_job(r),
    "DescribeTrainingJob": lambda p, r: p.training_jobs.describe_training_job(resource_name(r, "TrainingJobName")),
    "ListTrainingJobs": lambda p, r: p.training_jobs.list_training_jobs(**r),
    "StopTrainingJob": lambda p, r: p.training_jobs.stop_training_job(resource_name(r, "TrainingJobName")),
    # tuning jobs
    "CreateHyperParameterTuningJob": lambda p, r: p.tuning_jobs.create_hyper_parameter_tuning_job(r),
    "DescribeHyperParameterTuningJob": lambda p, r: p.tuning_jobs.describe_hyper_parameter_tuning_job(
        _tuning_name(r)),
    "ListHyperParameterTuningJobs": lambda p, r: p.tuning_jobs.list_hyper_parameter_tuning_jobs(**r),
    "ListTrainingJobsForHyperParameterTuningJob": lambda p, r:
        p.tuning_jobs.list_training_jobs_for_hyper_parameter_tuning_job(**r),
    "StopHyperParameterTuningJob": lambda p, r: p.tuning_jobs.stop_hyper_parameter_tuning_job(_tuning_name(r)),
    # models
    "CreateModel": lambda p, r: p.models.create_model(r),
    "DescribeModel": lambda p, r: p.models.describe_model(resource_name(r, "ModelName")),
    "ListModels": lambda p, r: p.models.list_models(**r),
    "DeleteModel": lambda p, r: p.models.delete_model(resource_name(r, "ModelName")),
    # endpoint configs
    "CreateEndpointConfig": lambda p, r: p.endpoint_configs.create_endpoint_config(r),
    "DescribeEndpointConfig": lambda p, r: p.endpoint_configs.describe_endpoint_config(
        resource_name(r, "EndpointConfigName")),
    "ListEndpointConfigs": lambda p, r: p.endpoint_configs.list_endpoint_configs(**r),
    "DeleteEndpointConfig": lambda p, r: p.endpoint_configs.delete_endpoint_config(
        resource_name(r, "EndpointConfigName")),
    # endpoints
    "CreateEndpoint": lambda p, r: p.endpoints.create_endpoint(r),
    "DescribeEndpoint": lambda p, r: p.endpoints.describe_endpoint(resource_name(r, "EndpointName")),
    "ListEndpoints": lambda p, r: p.endpoints.list_endpoints(**r),
    "DeleteEndpoint": lambda p, r: p.endpoints.delete_endpoint(resource_name(r, "EndpointName")),
    "UpdateEndpoint": lambda p, r: p.endpoints.update_endpoint(r),
    "UpdateEndpointWeightsAndCapacities": lambda p, r: p.endpoints.update_endpoint_weights_and_capacities(r),
    # transform jobs
    "CreateTransformJob": lambda p, r: p.transform_jobs.create_transform_job(r),
    "DescribeTransformJob": lambda p, r: p.transform_jobs.describe_transform_job(resource_name(r, "TransformJobName")),
    "ListTransformJobs": lambda p, r: p.transform_jobs.list_transform_jobs(**r),
    "StopTransformJob": lambda p, r: p.transform_jobs.stop_transform_job(resource_name(r, "TransformJobName")),
    # tags
    "ListTags": lambda p, r: p.tags.list_tags(r),
}

SERVICE = JsonService(prefix=TARGET_PREFIX, model_name="sagemaker", operations=OPERATIONS)
