"""``Predictor``: send requests to an endpoint and manage it (sagemaker.predictor's API).

``predictor.predict(data)`` serializes ``data`` with ``predictor.serializer`` (its content type is
the request's ``ContentType``), asks for ``predictor.deserializer.ACCEPT`` and deserializes the
answer by the content type the endpoint returned. The UFO course's flow:
``predictor.serializer = CSVSerializer(); predictor.deserializer = JSONDeserializer();
predictor.predict(test_X)``. Errors are the runtime's: ``ModelError`` when the model refuses the
request, ``RuntimeValidationError`` for a missing or not-in-service endpoint.
"""

from __future__ import annotations

from typing import Any

from forgeml.errors import ValidationException
from forgeml.sdk.deserializers import BaseDeserializer, BytesDeserializer
from forgeml.sdk.model_monitor import DataCaptureConfig
from forgeml.sdk.serializers import BaseSerializer, IdentitySerializer
from forgeml.sdk.session import Session, production_variant
from forgeml.service.names import name_from_base


class Predictor:
    def __init__(
        self,
        endpoint_name: str,
        sagemaker_session: Session | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        component_name: str | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.sagemaker_session = sagemaker_session or Session()
        self.serializer: BaseSerializer = serializer if serializer is not None else IdentitySerializer()
        self.deserializer: BaseDeserializer = deserializer if deserializer is not None else BytesDeserializer()
        self.component_name = component_name
        self._model_names: list[str] | None = None

    @property
    def endpoint(self) -> str:
        """The SDK v1 name of ``endpoint_name``."""
        return self.endpoint_name

    @property
    def content_type(self) -> str:
        """The request's ContentType: the serializer's."""
        return str(getattr(self.serializer, "content_type", None) or self.serializer.CONTENT_TYPE)

    @property
    def accept(self) -> str | tuple[str, ...]:
        """The Accept types asked for: the deserializer's ``ACCEPT``."""
        return self.deserializer.ACCEPT

    # -- inference --------------------------------------------------------------------------------
    def predict(
        self,
        data: Any,
        initial_args: dict[str, Any] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
    ) -> Any:
        """Invoke the endpoint with ``data``; the deserialized answer."""
        request = self._request_args(data, initial_args, target_model, target_variant, inference_id, custom_attributes)
        response = self.sagemaker_session.sagemaker_runtime_client.invoke_endpoint(**request)
        return self._handle_response(response)

    def _request_args(self, data: Any, initial_args: dict[str, Any] | None, target_model: str | None,
                      target_variant: str | None, inference_id: str | None,
                      custom_attributes: str | None) -> dict[str, Any]:
        """InvokeEndpoint's arguments; ``initial_args`` wins over what the predictor would send."""
        args = dict(initial_args or {})
        args.setdefault("EndpointName", self.endpoint_name)
        args.setdefault("ContentType", self.content_type)
        accept = self.accept
        args.setdefault("Accept", accept if isinstance(accept, str) else ", ".join(accept))
        for key, value in (("TargetModel", target_model), ("TargetVariant", target_variant),
                           ("InferenceId", inference_id), ("CustomAttributes", custom_attributes)):
            if value:
                args[key] = value
        args["Body"] = self.serializer.serialize(data)
        return args

    def _handle_response(self, response: dict[str, Any]) -> Any:
        content_type = response.get("ContentType", "application/octet-stream")
        return self.deserializer.deserialize(response["Body"], content_type)

    def send_feedback(self, reward: float, inference_id: str | None = None, variant_name: str | None = None) -> str:
        """A bandit reward in [0, 1] for a request (by inference id) or a variant; the variant credited.

        A forgeml extension: endpoints whose config routes by bandit learn from it.
        """
        return self.sagemaker_session.platform.runtime.send_feedback(
            self.endpoint_name, reward, inference_id=inference_id, variant_name=variant_name)

    # -- the endpoint -----------------------------------------------------------------------------
    def _get_endpoint_config_name(self) -> str:
        return str(self.sagemaker_session.describe_endpoint(self.endpoint_name)["EndpointConfigName"])

    def _get_model_names(self) -> list[str]:
        config = self.sagemaker_session.describe_endpoint_config(self._get_endpoint_config_name())
        self._model_names = [variant["ModelName"] for variant in config["ProductionVariants"]]
        return self._model_names

    def update_endpoint(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        model_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        kms_key: str | None = None,
        data_capture_config_dict: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> None:
        """A new endpoint config, copied from the current one with these changes, then UpdateEndpoint.

        With one variant, what is not given is kept from it (the SDK asks for both count and type);
        an endpoint of several variants becomes one ``AllTraffic`` variant of ``model_name``.
        """
        current_name = self._get_endpoint_config_name()
        variants = None
        if initial_instance_count or instance_type or accelerator_type or model_name:
            current = self.sagemaker_session.describe_endpoint_config(current_name)["ProductionVariants"]
            variants = [self._changed_variant(current, initial_instance_count, instance_type, accelerator_type,
                                              model_name)]
        new_name = name_from_base(current_name)
        self.sagemaker_session.create_endpoint_config_from_existing(
            current_name, new_name, new_tags=tags, new_kms_key=kms_key,
            new_data_capture_config_dict=data_capture_config_dict, new_production_variants=variants)
        self.sagemaker_session.update_endpoint(self.endpoint_name, new_name, wait=wait)
        if variants is not None:
            self._model_names = [variants[0]["ModelName"]]

    @staticmethod
    def _changed_variant(current: list[dict[str, Any]], count: int | None, instance_type: str | None,
                         accelerator_type: str | None, model_name: str | None) -> dict[str, Any]:
        if len(current) == 1:
            variant = dict(current[0])
            for key, value in (("InitialInstanceCount", count), ("InstanceType", instance_type),
                               ("AcceleratorType", accelerator_type), ("ModelName", model_name)):
                if value is not None:
                    variant[key] = value
            return variant
        if model_name is None:
            names = ", ".join(v["ModelName"] for v in current)
            raise ValueError("Unable to choose a default model for a new EndpointConfig because the endpoint has "
                             f"multiple models: {names}")
        if instance_type is None or count is None:
            raise ValueError(
                "Missing initial_instance_count and/or instance_type. Provided values: "
                f"initial_instance_count={count}, instance_type={instance_type}, "
                f"accelerator_type={accelerator_type}, model_name={model_name}.")
        return production_variant(model_name, instance_type, count, accelerator_type=accelerator_type)

    def update_data_capture_config(self, data_capture_config: DataCaptureConfig | None) -> None:
        """Update the endpoint to a copy of its config with this capture setting (None keeps the current one)."""
        capture = data_capture_config._to_request_dict() if data_capture_config is not None else None
        self.update_endpoint(data_capture_config_dict=capture)

    def enable_data_capture(self) -> None:
        """Capture with the defaults: 20% of requests, both ways, to the default bucket's model-monitor prefix."""
        self.update_data_capture_config(DataCaptureConfig(enable_capture=True, sagemaker_session=self.sagemaker_session))

    def disable_data_capture(self) -> None:
        self.update_data_capture_config(DataCaptureConfig(enable_capture=False, sagemaker_session=self.sagemaker_session))

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """DeleteEndpoint (and its config); the models stay, for ``delete_model``."""
        config_name = self._get_endpoint_config_name()
        if self._model_names is None:
            self._get_model_names()  # remembered so delete_model still works once the config is gone
        self.sagemaker_session.delete_endpoint(self.endpoint_name)
        if delete_endpoint_config:
            self.sagemaker_session.delete_endpoint_config(config_name)

    def delete_model(self) -> None:
        """Delete the models the endpoint serves (or served, once it is deleted)."""
        try:
            names = self._get_model_names()
        except ValidationException:
            if self._model_names is None:
                raise
            names = self._model_names
        failed = []
        for name in names:
            try:
                self.sagemaker_session.delete_model(name)
            except ValidationException:
                failed.append(name)
        if failed:
            raise RuntimeError(f"One or more models cannot be deleted, please retry. \nFailed models: {', '.join(failed)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint_name={self.endpoint_name!r})"
