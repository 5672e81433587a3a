"""k-NN hyperparameters: SageMaker's names, defaults and ranges (reference §3.1)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.hyperparameters import (
    AUTO,
    Categorical,
    HyperparameterError,
    HyperparameterSchema,
    Int,
)

INDEX_TYPES = ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")
INDEX_METRICS = ("L2", "INNER_PRODUCT", "COSINE")
PQ_M_VALUES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)

SCHEMA = HyperparameterSchema(
    "knn",
    [
        Int("feature_dim", required=True, minimum=1),
        Int("k", required=True, minimum=1),
        Categorical("predictor_type", ("classifier", "regressor"), required=True),
        Int("sample_size", required=True, minimum=1),
        Categorical("dimension_reduction_type", ("sign", "fjlt")),
        Int("dimension_reduction_target", minimum=1),
        Categorical("index_type", INDEX_TYPES, "faiss.Flat"),
        Categorical("index_metric", INDEX_METRICS, "L2"),
        Int("faiss_index_ivf_nlists", AUTO, minimum=1, allow_auto=True),
        Int("faiss_index_pq_m", minimum=1),
        Int("mini_batch_size", 5000, minimum=1),
    ],
)


def _rule(name: str, value: Any, rule: str) -> HyperparameterError:
    return HyperparameterError(
        f"Value '{value}' at 'HyperParameters.{name}' failed to satisfy constraint: Member must {rule}"
    )


def check(values: dict[str, Any]) -> None:
    """The rules that tie k-NN's parameters together (docs and the SDK's checks)."""
    reduction = values["dimension_reduction_type"]
    target = values["dimension_reduction_target"]
    if reduction is not None and target is None:
        raise HyperparameterError(
            "HyperParameters: 'dimension_reduction_target' is required when dimension_reduction_type is set"
        )
    if reduction is None and target is not None:
        raise _rule(
            "dimension_reduction_target",
            target,
            "be used together with dimension_reduction_type (sign or fjlt)",
        )
    if target is not None and target >= values["feature_dim"]:
        raise _rule(
            "dimension_reduction_target", target, f"be less than feature_dim ({values['feature_dim']})"
        )
    index_type = values["index_type"]
    if index_type == "faiss.IVFPQ" and values["index_metric"] != "L2":
        raise _rule("index_metric", values["index_metric"], "be L2 when index_type is faiss.IVFPQ")
    if values["faiss_index_ivf_nlists"] != AUTO and index_type == "faiss.Flat":
        raise _rule(
            "faiss_index_ivf_nlists",
            values["faiss_index_ivf_nlists"],
            "be used only with index_type faiss.IVFFlat or faiss.IVFPQ",
        )
    pq_m = values["faiss_index_pq_m"]
    if pq_m is not None:
        if index_type != "faiss.IVFPQ":
            raise _rule("faiss_index_pq_m", pq_m, "be used only with index_type faiss.IVFPQ")
        if pq_m not in PQ_M_VALUES:
            raise _rule("faiss_index_pq_m", pq_m, "be one of " + ", ".join(str(m) for m in PQ_M_VALUES))
