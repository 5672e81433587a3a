"""An in-process client with boto3's SageMaker method names and request/response shapes.

``Session().sagemaker_client.create_training_job(TrainingJobName=..., ...)`` behaves like
``boto3.client("sagemaker").create_training_job(...)`` against the embedded platform, so code
written for boto3 runs unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from forgeml.service.platform import Platform


def _with_metadata(response: dict[str, Any] | None) -> dict[str, Any]:
    result = dict(response or {})
    result["ResponseMetadata"] = {"RequestId": str(uuid.uuid4()), "HTTPStatusCode": 200, "RetryAttempts": 0}
    return result


class Paginator:
    def __init__(self, method: Any, result_key: str) -> None:
        self.method = method
        self.result_key = result_key

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token = kwargs.pop("NextToken", None)
        while True:
            page = self.method(**kwargs, **({"NextToken": token} if token else {}))
            yield page
            token = page.get("NextToken")
            if not token:
                return


class PaginatingClient:
    """boto3's ``can_paginate``/``get_paginator`` for a client's ``_PAGINATED`` operations (name -> result key)."""

    _PAGINATED: dict[str, str] = {}

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in self._PAGINATED

    def get_paginator(self, operation_name: str) -> Paginator:
        if operation_name not in self._PAGINATED:
            raise ValueError(f"operation {operation_name} cannot be paginated")
        return Paginator(getattr(self, operation_name), self._PAGINATED[operation_name])


class SageMakerClient(PaginatingClient):
    _PAGINATED = {
        "list_training_jobs": "TrainingJobSummaries",
        "list_hyper_parameter_tuning_jobs": "HyperParameterTuningJobSummaries",
        "list_training_jobs_for_hyper_parameter_tuning_job": "TrainingJobSummaries",
        "list_models": "Models",
        "list_endpoint_configs": "EndpointConfigs",
        "list_endpoints": "Endpoints",
        "list_transform_jobs": "TransformJobSummaries",
    }

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.training_jobs.create_training_job(request))

    def describe_training_job(self, *, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return _with_metadata(self.platform.training_jobs.describe_training_job(TrainingJobName))

    def list_training_jobs(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.training_jobs.list_training_jobs(**params))

    def stop_training_job(self, *, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.training_jobs.stop_training_job(TrainingJobName)
        return _with_metadata({})

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.tuning_jobs.create_hyper_parameter_tuning_job(request))

    def describe_hyper_parameter_tuning_job(self, *, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        return _with_metadata(self.platform.tuning_jobs.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName))

    def list_hyper_parameter_tuning_jobs(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.tuning_jobs.list_hyper_parameter_tuning_jobs(**params))

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.tuning_jobs.list_training_jobs_for_hyper_parameter_tuning_job(**params))

    def stop_hyper_parameter_tuning_job(self, *, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.tuning_jobs.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName)
        return _with_metadata({})

    def create_model(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.models.create_model(request))

    def describe_model(self, *, ModelName: str) -> dict[str, Any]:  # noqa: N803
        return _with_metadata(self.platform.models.describe_model(ModelName))

    def list_models(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.models.list_models(**params))

    def delete_model(self, *, ModelName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.models.delete_model(ModelName)
        return _with_metadata({})

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoint_configs.create_endpoint_config(request))

    def describe_endpoint_config(self, *, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        return _with_metadata(self.platform.endpoint_configs.describe_endpoint_config(EndpointConfigName))

    def list_endpoint_configs(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoint_configs.list_endpoint_configs(**params))

    def delete_endpoint_config(self, *, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.endpoint_configs.delete_endpoint_config(EndpointConfigName)
        return _with_metadata({})

    # -- endpoints ---------------------------------------------------------------------------
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoints.create_endpoint(request))

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        return _with_metadata(self.platform.endpoints.describe_endpoint(EndpointName))

    def list_endpoints(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoints.list_endpoints(**params))

    def delete_endpoint(self, *, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.endpoints.delete_endpoint(EndpointName)
        return _with_metadata({})

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoints.update_endpoint(request))

    def update_endpoint_weights_and_capacities(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.endpoints.update_endpoint_weights_and_capacities(request))

    # -- transform jobs ----------------------------------------------------------------------
    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.transform_jobs.create_transform_job(request))

    def describe_transform_job(self, *, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        return _with_metadata(self.platform.transform_jobs.describe_transform_job(TransformJobName))

    def list_transform_jobs(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.transform_jobs.list_transform_jobs(**params))

    def stop_transform_job(self, *, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        self.platform.transform_jobs.stop_transform_job(TransformJobName)
        return _with_metadata({})

    # -- tags --------------------------------------------------------------------------------
    def list_tags(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.tags.list_tags(request))


class LogsClient:
    """The CloudWatch Logs calls the SDK uses to read a training job's log."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def describe_log_streams(self, *, logGroupName: str, logStreamNamePrefix: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        job = logStreamNamePrefix.rstrip("/").split("/")[0]
        streams = self.platform.logs.job_log_streams(job)
        return _with_metadata({"logStreams": [s for s in streams if s["logStreamName"].startswith(logStreamNamePrefix)]})

    def get_log_events(self, *, logGroupName: str, logStreamName: str, nextToken: str | None = None,  # noqa: N803
                       startFromHead: bool = True, limit: int = 10000, **_: Any) -> dict[str, Any]:
        """One stream's events after ``nextToken`` (the last event's id), oldest first."""
        after = int(nextToken.split("/")[-1]) if nextToken else 0
        job = logStreamName.split("/")[0]
        events = [e for e in self.platform.logs.job_events(job, after, limit) if e["logStreamName"] == logStreamName]
        last = events[-1]["id"] if events else after
        token = f"f/{last}"
        return _with_metadata({
            "events": [{"timestamp": e["timestamp"], "message": e["message"], "ingestionTime": e["timestamp"]}
                       for e in events],
            "nextForwardToken": token, "nextBackwardToken": f"b/{after}",
        })


class RuntimeClient:
    """boto3's ``sagemaker-runtime`` client: ``invoke_endpoint`` against this platform's endpoints.

    Errors are forgeml's runtime errors (``ModelError``, ``RuntimeValidationError`` ...), which carry
    the sagemaker-runtime error codes in ``code``.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        response = self.platform.runtime.invoke_endpoint(**request)
        if "ResponseMetadata" not in response:
            response = _with_metadata(response)
        return response
