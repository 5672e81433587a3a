"""sagemaker.pipeline's names (inference pipelines, not SageMaker Pipelines workflows)."""

from forgeml.sdk.pipeline import PipelineModel

__all__ = ["PipelineModel"]
