"""SageMaker's control plane over JSON 1.1 (``X-Amz-Target: SageMaker.<Operation>``).

One table maps each operation to one call of the service layer, called the way the in-process
client (``forgeml.sdk.client.SageMakerClient``) calls it: Create and Update operations pass the
request whole, List operations pass its members as keyword parameters, and Describe, Stop and
Delete pass the resource's name. The name is checked here first (present, a string, SageMaker's
length and pattern), since the services take it as a bare argument; everything else is the
services' to judge.

``ListTags`` answers from the Tags each resource was created with (the sagemaker SDK reads them in
``Estimator.attach``, which ``HyperparameterTuner.deploy`` goes through). Tags cannot be changed
after creation: ``AddTags`` and ``DeleteTags`` are refused like every other operation forgeml does
not serve, naming the operation.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select

from forgeml.errors import ResourceNotFound
from forgeml.server.json_protocol import JsonService, Operation
from forgeml.service.names import NAME_PATTERN
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import tables

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

TARGET_PREFIX = "SageMaker"
TUNING_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"
ARN_PATTERN = r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:.+"
#: the resource part of an ARN (``training-job`` in ``...:training-job/name``) -> the table holding it
TAGGED_TABLES: dict[str, Table] = {
    "training-job": tables.training_jobs,
    "hyper-parameter-tuning-job": tables.tuning_jobs,
    "model": tables.models,
    "endpoint-config": tables.endpoint_configs,
    "endpoint": tables.endpoints,
    "transform-job": tables.transform_jobs,
}


def resource_name(request: dict[str, Any], member: str, *, max_len: int = 63, pattern: str = NAME_PATTERN) -> str:
    """The request's one member, a resource name, checked as SageMaker checks it."""
    check = Checker()
    check.unknown_members(request, "", (member,))
    check.string(request.get(member), member, required=True, min_len=1, max_len=max_len, pattern=pattern)
    check.raise_if_any()
    return str(request[member])


def _tuning_name(request: dict[str, Any]) -> str:
    return resource_name(request, "HyperParameterTuningJobName", max_len=32, pattern=TUNING_NAME_PATTERN)



# -- ListTags ------------------------------------------------------------------------------------


def list_tags(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    """The Tags the resource named by ``ResourceArn`` was created with, 50 (or MaxResults) at a time."""
    check = Checker()
    check.unknown_members(request, "", ("ResourceArn", "NextToken", "MaxResults"))
    check.string(request.get("ResourceArn"), "ResourceArn", required=True, max_len=256, pattern=ARN_PATTERN)
    check.integer(request.get("MaxResults"), "MaxResults", minimum=50)
    check.string(request.get("NextToken"), "NextToken", max_len=8192)
    check.raise_if_any()
    arn = str(request["ResourceArn"])
    tags = _stored_tags(platform, arn)
    params = {"MaxResults": request.get("MaxResults") or 50, "NextToken": request.get("NextToken")}
    rows, token = page(params, {"ResourceArn": arn}, lambda offset, count: tags[offset: offset + count])
    response: dict[str, Any] = {"Tags": rows}
    if token:
        response["NextToken"] = token
    return response


def _stored_tags(platform: Platform, arn: str) -> list[dict[str, str]]:
    match = re.fullmatch(r"arn:[^:]+:sagemaker:([^:]*):([^:]*):([a-z\-]+)/(.+)", arn)
    table = TAGGED_TABLES.get(match.group(3)) if match else None
    if match is None or table is None or match.group(1) != platform.config.region \
            or match.group(2) != platform.config.account_id:
        raise ResourceNotFound(f"Requested resource not found: {arn}")
    with platform.db.read() as conn:
        stored = conn.execute(select(table.c.request).where(table.c.arn == arn)).scalar_one_or_none()
    if stored is None:
        raise ResourceNotFound(f"Requested resource not found: {arn}")
    return [{"Key": str(tag["Key"]), "Value": str(tag.get("Value", ""))} for tag in stored.get("Tags") or []]


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
    "ListTags": list_tags,
}

SERVICE = JsonService(prefix=TARGET_PREFIX, model_name="sagemaker", operations=OPERATIONS)
