"""Endpoint configs: production variants, shadow variants and data capture (CreateEndpointConfig ...).

Rules checked here, before anything is stored: every variant's model exists, variant names are
unique, weights are non-negative and do not all sum to zero, instance types are known, at most one
production variant beside shadow variants, and DataCaptureConfig's members.
"""

from __future__ import annotations

from typing import Any

from forgeml.errors import ValidationException
from forgeml.service.instance_types import INSTANCE_TYPES
from forgeml.service.names import NAME_PATTERN
from forgeml.service.records import RecordService
from forgeml.service.training_requests import URI_PATTERN
from forgeml.service.validation import Checker
from forgeml.store.records import endpoint_configs

KNOWN_MEMBERS = ("EndpointConfigName", "ProductionVariants", "ShadowProductionVariants", "DataCaptureConfig", "Tags",
                 "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig", "ExecutionRoleArn", "VpcConfig",
                 "EnableNetworkIsolation")
CONTENT_TYPE_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*"


class EndpointConfigService(RecordService):
    table = endpoint_configs
    arn_resource = "endpoint-config"
    noun = "endpoint configuration"
    key = "EndpointConfig"

    def create_endpoint_config(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", KNOWN_MEMBERS)
        check.string(request.get("EndpointConfigName"), "EndpointConfigName", required=True, min_len=1, max_len=63,
                     pattern=NAME_PATTERN)
        production = [self._variant(check, v, f"ProductionVariants.{i + 1}") for i, v in
                      enumerate(check.items(request.get("ProductionVariants"), "ProductionVariants", required=True,
                                            min_items=1, max_items=10))]
        shadow = [self._variant(check, v, f"ShadowProductionVariants.{i + 1}") for i, v in
                  enumerate(check.items(request.get("ShadowProductionVariants"), "ShadowProductionVariants",
                                        max_items=10))]
        capture = request.get("DataCaptureConfig")
        if capture is not None:
            capture = self._data_capture(check, capture)
        check.raise_if_any()
        names = [v["VariantName"] for v in production + shadow]
        for name in sorted({n for n in names if names.count(n) > 1}):
            raise ValidationException(f"1 validation error detected: Value '{name}' at 'productionVariants.variantName' "
                                      "failed to satisfy constraint: Member must be unique within the endpoint config")
        if shadow and len(production) != 1:
            raise ValidationException("1 validation error detected: Value at 'productionVariants' failed to satisfy "
                                      "constraint: Member must have exactly one production variant when "
                                      "ShadowProductionVariants are given")
        if sum(v["InitialVariantWeight"] for v in production) <= 0:
            raise ValidationException("1 validation error detected: Value at 'productionVariants.initialVariantWeight' "
                                      "failed to satisfy constraint: the variants' weights must not all be zero")
        for variant in production + shadow:
            if not self.platform.models.exists(variant["ModelName"]):
                raise ValidationException(
                    f"Could not find model \"{self.platform.arn('model', variant['ModelName'])}\".")
        normalized: dict[str, Any] = {"EndpointConfigName": request["EndpointConfigName"], "ProductionVariants": production}
        if shadow:
            normalized["ShadowProductionVariants"] = shadow
        if capture is not None:
            normalized["DataCaptureConfig"] = capture
        for key in ("Tags", "KmsKeyId", "AsyncInferenceConfig", "ExecutionRoleArn"):
            if request.get(key) is not None:
                normalized[key] = request[key]
        return {"EndpointConfigArn": self._insert(normalized["EndpointConfigName"], normalized)}

    @staticmethod
    def _variant(check: Checker, variant: Any, path: str) -> dict[str, Any]:
        variant = dict(check.structure(variant, path, required=True))
        check.string(variant.get("VariantName"), f"{path}.VariantName", required=True, min_len=1, max_len=63,
                     pattern=NAME_PATTERN)
        check.string(variant.get("ModelName"), f"{path}.ModelName", required=True, min_len=1, max_len=63)
        check.integer(variant.get("InitialInstanceCount"), f"{path}.InitialInstanceCount", minimum=1)
        instance_type = variant.get("InstanceType")
        if check.string(instance_type, f"{path}.InstanceType") and instance_type is not None \
                and instance_type not in INSTANCE_TYPES:
            check.fail(instance_type, f"{path}.InstanceType",
                       "be a known instance type (for example ml.m5.large, ml.c5.xlarge, ml.t2.medium)")
        weight = variant.get("InitialVariantWeight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            check.fail(weight, f"{path}.InitialVariantWeight", "be a number greater than or equal to 0")
        variant["InitialVariantWeight"] = float(weight) if isinstance(weight, int | float) else weight
        if variant.get("ServerlessConfig") is None:
            variant.setdefault("InitialInstanceCount", 1)
        return variant

    @staticmethod
    def _data_capture(check: Checker, capture: Any) -> dict[str, Any]:
        path = "DataCaptureConfig"
        capture = dict(check.structure(capture, path))
        check.boolean(capture.get("EnableCapture"), f"{path}.EnableCapture")
        check.integer(capture.get("InitialSamplingPercentage"), f"{path}.InitialSamplingPercentage", required=True,
                      minimum=0, maximum=100)
        check.string(capture.get("DestinationS3Uri"), f"{path}.DestinationS3Uri", required=True, max_len=512,
                     pattern=URI_PATTERN)
        for index, option in enumerate(check.items(capture.get("CaptureOptions"), f"{path}.CaptureOptions",
                                                   required=True, min_items=1, max_items=32)):
            mode = check.structure(option, f"{path}.CaptureOptions.{index + 1}").get("CaptureMode")
            check.enum(mode, f"{path}.CaptureOptions.{index + 1}.CaptureMode", ("Input", "Output", "InputAndOutput"),
                       required=True)
        header = capture.get("CaptureContentTypeHeader")
        if header is not None:
            header = check.structure(header, f"{path}.CaptureContentTypeHeader")
            for key in ("CsvContentTypes", "JsonContentTypes"):
                for index, value in enumerate(check.items(header.get(key), f"{path}.CaptureContentTypeHeader.{key}",
                                                          max_items=10)):
                    check.string(value, f"{path}.CaptureContentTypeHeader.{key}.{index + 1}", min_len=1, max_len=256,
                                 pattern=CONTENT_TYPE_PATTERN)
        capture.setdefault("EnableCapture", True)
        return capture

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        return self._describe(name)

    def delete_endpoint_config(self, name: str) -> None:
        self._delete(name)

    def list_endpoint_configs(self, **params: Any) -> dict[str, Any]:
        return self._list(params)
