"""``PipelineModel``: several models served as one inference pipeline (sagemaker.pipeline's API).

``PipelineModel(models=[preprocess, linear_learner]).deploy(1, "ml.m5.large")`` creates one model
whose ``Containers`` are the models' container definitions, run in order on every instance
(``InferenceExecutionConfig`` ``Serial``): each container's response is the next one's request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from forgeml.sdk.model import Model, PredictorFactory, make_predictor
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.session import Session, production_variant
from forgeml.service.names import base_name_from_image, name_from_base

if TYPE_CHECKING:
    from forgeml.sdk.deserializers import BaseDeserializer
    from forgeml.sdk.model_monitor import DataCaptureConfig
    from forgeml.sdk.serializers import BaseSerializer
    from forgeml.sdk.transformer import Transformer

SERIAL = {"Mode": "Serial"}


class PipelineModel:
    def __init__(
        self,
        models: Sequence[Model],
        role: str | None = None,
        predictor_cls: PredictorFactory | None = None,
        name: str | None = None,
        sagemaker_session: Session | None = None,
        vpc_config: dict[str, Any] | None = None,
        enable_network_isolation: bool = False,
    ) -> None:
        if not models:
            raise ValueError("PipelineModel needs at least one model")
        self.models = list(models)
        self.role = role
        self.predictor_cls = predictor_cls
        self.name = name
        self.sagemaker_session = sagemaker_session or self.models[0].sagemaker_session
        self.vpc_config = vpc_config
        self.enable_network_isolation = enable_network_isolation
        self.endpoint_name: str | None = None

    def pipeline_container_def(self, instance_type: str | None = None) -> list[dict[str, Any]]:
        """Every model's ContainerDefinition, in the order requests pass through them."""
        return [model.prepare_container_def(instance_type) for model in self.models]

    def _create_sagemaker_pipeline_model(self, instance_type: str | None = None,
                                         tags: list[dict[str, str]] | None = None) -> str:
        containers = self.pipeline_container_def(instance_type)
        self.name = self.name or name_from_base(base_name_from_image(containers[0]["Image"]))
        return self.sagemaker_session.create_model(self.name, self.role, containers, vpc_config=self.vpc_config,
                                                   enable_network_isolation=self.enable_network_isolation,
                                                   tags=tags, inference_execution_config=dict(SERIAL))

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        endpoint_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        wait: bool = True,
        update_endpoint: bool = False,
        data_capture_config: DataCaptureConfig | None = None,
        kms_key: str | None = None,
        volume_size: int | None = None,
    ) -> Predictor:
        """Create the pipeline model and an endpoint for it (or move ``endpoint_name`` to it: ``update_endpoint``)."""
        self._create_sagemaker_pipeline_model(instance_type, tags)
        assert self.name is not None
        self.endpoint_name = endpoint_name or self.name
        capture = data_capture_config._to_request_dict() if data_capture_config is not None else None
        session = self.sagemaker_session
        if update_endpoint:
            config_name = session.create_endpoint_config(
                name_from_base(self.name), self.name, initial_instance_count, instance_type, tags=tags,
                kms_key=kms_key, data_capture_config_dict=capture, volume_size=volume_size)
            session.update_endpoint(self.endpoint_name, config_name, wait=wait)
        else:
            variant = production_variant(self.name, instance_type, initial_instance_count, volume_size=volume_size)
            session.endpoint_from_production_variants(name=self.endpoint_name, production_variants=[variant],
                                                      tags=tags, kms_key=kms_key, wait=wait,
                                                      data_capture_config_dict=capture)
        return make_predictor(self.predictor_cls, self.endpoint_name, session, serializer, deserializer)

    def transformer(
        self,
        instance_count: int,
        instance_type: str,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        env: dict[str, str] | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None,
        volume_kms_key: str | None = None,
    ) -> Transformer:
        """Create the pipeline model and return a Transformer for batch transform jobs on it."""
        from forgeml.sdk.transformer import Transformer

        self._create_sagemaker_pipeline_model(instance_type, tags)
        assert self.name is not None
        return Transformer(
            self.name, instance_count, instance_type, strategy=strategy, assemble_with=assemble_with,
            output_path=output_path, output_kms_key=output_kms_key, accept=accept,
            max_concurrent_transforms=max_concurrent_transforms, max_payload=max_payload, tags=tags, env=env,
            base_transform_job_name=self.name, sagemaker_session=self.sagemaker_session,
            volume_kms_key=volume_kms_key,
        )

    def delete_model(self) -> None:
        if self.name is None:
            raise ValueError("The SageMaker model must be created before attempting to delete.")
        self.sagemaker_session.delete_model(self.name)
