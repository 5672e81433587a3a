"""Errors with SageMaker's names and shapes.

Control-plane errors (raised synchronously by the service layer) carry an AWS error code, so the
SDK, the CLI and the HTTP server can all report them the way SageMaker does.  Job-time errors
(raised inside a running job) become a job's ``FailureReason``; their prefix (``ClientError``,
``AlgorithmError``) tells the user whether the fault is in their input or in the algorithm.
"""

from __future__ import annotations


class ForgeMLError(Exception):
    """Base class for every error forgeml raises on purpose."""

    code: str = "InternalFailure"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The AWS JSON error body: ``{"__type": ..., "message": ...}``."""
        return {"__type": self.code, "message": self.message}


class ValidationException(ForgeMLError):
    """A request member breaks a rule; the message names the member and the rule."""

    code = "ValidationException"
    http_status = 400


class ResourceNotFound(ForgeMLError):
    code = "ResourceNotFound"
    http_status = 400


class ResourceInUse(ForgeMLError):
    code = "ResourceInUse"
    http_status = 400


class ResourceLimitExceeded(ForgeMLError):
    code = "ResourceLimitExceeded"
    http_status = 400


class JobError(Exception):
    """An error inside a running job; ``str(error)`` becomes the job's FailureReason."""

    prefix = "AlgorithmError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def failure_reason(self) -> str:
        return f"{self.prefix}: {self.message}"


class ClientError(JobError):
    """The job's input (data, hyperparameters, channels) is at fault; the user can fix it."""

    prefix = "ClientError"


class AlgorithmError(JobError):
    """The algorithm or the user's script failed."""

    prefix = "AlgorithmError"


class DataFormatError(ClientError):
    """A record cannot be parsed; the message names the file and the record number."""

    def __init__(self, message: str, *, path: str | None = None, record: int | None = None) -> None:
        where = []
        if path is not None:
            where.append(f"file {path}")
        if record is not None:
            where.append(f"record {record}")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full)
        self.path = path
        self.record = record


class UnexpectedStatusException(ForgeMLError):
    """Raised by ``wait`` when a job ends Failed, as sagemaker's SDK does."""

    code = "UnexpectedStatusException"

    def __init__(self, message: str, allowed_statuses: list[str], actual_status: str) -> None:
        super().__init__(message)
        self.allowed_statuses = allowed_statuses
        self.actual_status = actual_status


# -- runtime (InvokeEndpoint) errors: the sagemaker-runtime service's names and status codes ----


class RuntimeValidationError(ForgeMLError):
    """InvokeEndpoint's ``ValidationError`` (the runtime names it without "Exception")."""

    code = "ValidationError"
    http_status = 400


class ModelError(ForgeMLError):
    """The model container answered with a non-2xx status: HTTP 424, with the container's answer."""

    code = "ModelError"
    http_status = 424

    def __init__(self, message: str, original_status_code: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__(message)
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn

    def to_dict(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message, "OriginalStatusCode": str(self.original_status_code),
                "OriginalMessage": self.original_message, "LogStreamArn": self.log_stream_arn}


class ModelNotReadyException(ForgeMLError):
    code = "ModelNotReadyException"
    http_status = 429


class ServiceUnavailable(ForgeMLError):
    code = "ServiceUnavailable"
    http_status = 503
