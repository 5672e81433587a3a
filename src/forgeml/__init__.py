"""forgeml: SageMaker's training, tuning and hosting API on your own machine.

Port a notebook by changing its imports: ``import forgeml as sagemaker``.
"""

from forgeml.errors import (
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    UnexpectedStatusException,
    ValidationException,
)
from forgeml.sdk.estimator import Estimator
from forgeml.sdk.inputs import TrainingInput
from forgeml.sdk.session import Session, get_execution_role

__version__ = "0.1.0"

__all__ = [
    "Estimator",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "Session",
    "TrainingInput",
    "UnexpectedStatusException",
    "ValidationException",
    "__version__",
    "get_execution_role",
]
