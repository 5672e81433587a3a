"""Linear Learner's hyperparameter schema (reference §1.1) and the rules across parameters (§1.2).

Names, defaults and ranges are SageMaker's. Where the docs and the container disagree the
container's default dump wins (it is what a job's ``Final configuration`` line shows), except for
``num_calibration_samples`` whose container default (10,000,000) is also what ``auto`` means here.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import (
    AUTO,
    Bool,
    Categorical,
    Float,
    Hyperparameter,
    HyperparameterError,
    HyperparameterSchema,
    Int,
)

BINARY = "binary_classifier"
MULTICLASS = "multiclass_classifier"
REGRESSOR = "regressor"

LOSSES_BY_PREDICTOR: dict[str, tuple[str, ...]] = {
    REGRESSOR: (
        "squared_loss",
        "absolute_loss",
        "eps_insensitive_squared_loss",
        "eps_insensitive_absolute_loss",
        "quantile_loss",
        "huber_loss",
    ),
    BINARY: ("logistic", "hinge_loss"),
    MULTICLASS: ("softmax_loss",),
}
ALL_LOSSES = ("auto", *sorted({loss for losses in LOSSES_BY_PREDICTOR.values() for loss in losses}))

SELECTION_CRITERIA = (
    "accuracy",
    "f_beta",
    "precision_at_target_recall",
    "recall_at_target_precision",
    "loss_function",
    # Legacy spellings the SDK still validates (UNVERIFIED whether today's container takes them):
    # ``f1`` is F-beta with beta fixed at 1, ``cross_entropy_loss`` is ``loss_function``.
    "f1",
    "cross_entropy_loss",
)


class PositiveWeight(Hyperparameter):
    """``positive_example_weight_mult``: a positive number, ``auto`` or ``balanced``."""

    def rule_text(self) -> str:
        return "be a number greater than 0 or 'auto' or 'balanced'"

    def parse(self, raw: Any) -> Any:
        text = str(raw).strip()
        if text.lower() in (AUTO, "balanced"):
            return text.lower()
        return super().parse(raw)


def _tristate(name: str, default: Any) -> Hyperparameter:
    """The ``auto``/``true``/``false`` switches of the normalisation step."""
    return Bool(name, default, allow_auto=True)


SCHEMA = HyperparameterSchema(
    "linear-learner",
    [
        Categorical("predictor_type", (BINARY, MULTICLASS, REGRESSOR), required=True),
        # Docs: 3..1e6 and required only for multiclass, ignored otherwise; the SDK validates 1..1e6,
        # so the schema takes 1..1e6 and check_hyperparameters applies the multiclass rule.
        Int("num_classes", None, minimum=1, maximum=1_000_000),
        Int("feature_dim", AUTO, minimum=1, allow_auto=True),
        Int("mini_batch_size", 1000, minimum=1),
        Int("epochs", 15, minimum=1),
        Float("learning_rate", AUTO, minimum=0, min_exclusive=True, allow_auto=True),
        Float("l1", AUTO, minimum=0, allow_auto=True),
        Float("wd", AUTO, minimum=0, allow_auto=True),
        Bool("use_bias", True),
        Categorical("optimizer", ("auto", "sgd", "adam", "rmsprop"), "auto"),
        Categorical("loss", ALL_LOSSES, "auto"),
        Int("num_models", AUTO, minimum=1, allow_auto=True),
        Int("num_calibration_samples", 10_000_000, minimum=1, allow_auto=True),
        Categorical("init_method", ("uniform", "normal"), "uniform"),
        Float("init_scale", 0.07, minimum=0, min_exclusive=True),
        Float("init_sigma", 0.01, minimum=0, min_exclusive=True),
        Float("init_bias", 0.0),
        _tristate("normalize_data", True),
        _tristate("normalize_label", AUTO),
        _tristate("unbias_data", AUTO),
        _tristate("unbias_label", AUTO),
        Int("num_point_for_scaler", 10_000, minimum=1),
        Float("margin", 1.0, minimum=0),
        Float("quantile", 0.5, minimum=0, maximum=1, min_exclusive=True, max_exclusive=True),
        Float("loss_insensitivity", 0.01, minimum=0, min_exclusive=True),
        Float("huber_delta", 1.0, minimum=0, min_exclusive=True),
        Int("early_stopping_patience", 3, minimum=1),
        Float("early_stopping_tolerance", 0.001, minimum=0, min_exclusive=True),
        Bool("balance_multiclass_weights", False),
        Categorical("binary_classifier_model_selection_criteria", SELECTION_CRITERIA, "accuracy"),
        Float("target_recall", 0.8, minimum=0, maximum=1, min_exclusive=True, max_exclusive=True),
        Float("target_precision", 0.8, minimum=0, maximum=1, min_exclusive=True, max_exclusive=True),
        PositiveWeight("positive_example_weight_mult", "float", 1.0, minimum=0, min_exclusive=True),
        Bool("use_lr_scheduler", True),
        Int("lr_scheduler_step", AUTO, minimum=1, allow_auto=True),
        Float(
            "lr_scheduler_factor",
            AUTO,
            minimum=0,
            maximum=1,
            min_exclusive=True,
            max_exclusive=True,
            allow_auto=True,
        ),
        Float("lr_scheduler_minimum_lr", AUTO, minimum=0, min_exclusive=True, allow_auto=True),
        Int("accuracy_top_k", 3, minimum=1, maximum=1_000_000),
        Float("f_beta", 1.0, minimum=0, min_exclusive=True),
        Float("beta_1", AUTO, minimum=0, maximum=1, max_exclusive=True, allow_auto=True),
        Float("beta_2", AUTO, minimum=0, maximum=1, max_exclusive=True, allow_auto=True),
        Float("bias_lr_mult", AUTO, minimum=0, min_exclusive=True, allow_auto=True),
        Float("bias_wd_mult", AUTO, minimum=0, allow_auto=True),
        Float("momentum", AUTO, minimum=0, maximum=1, max_exclusive=True, allow_auto=True),
        # Container-internal keys from the default dump (§1.1), accepted without effect.
        *mxnet_internal_keys(extra={"_enable_profiler": "false"}),
    ],
)

# Parameters that only one optimizer, loss or predictor type reads: setting them elsewhere is
# legal in SageMaker (the docs say they are ignored), so a job gets a warning line, not an error.
_ONLY_FOR: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "beta_1": ("optimizer", "adam", ("adam",)),
    "beta_2": ("optimizer", "adam", ("adam",)),
    "momentum": ("optimizer", "sgd", ("sgd",)),
    "margin": ("loss", "hinge_loss", ("hinge_loss",)),
    "quantile": ("loss", "quantile_loss", ("quantile_loss",)),
    "huber_delta": ("loss", "huber_loss", ("huber_loss",)),
    "loss_insensitivity": (
        "loss",
        "the eps_insensitive losses",
        ("eps_insensitive_squared_loss", "eps_insensitive_absolute_loss"),
    ),
    "num_classes": ("predictor_type", MULTICLASS, (MULTICLASS,)),
    "balance_multiclass_weights": ("predictor_type", MULTICLASS, (MULTICLASS,)),
    "accuracy_top_k": ("predictor_type", MULTICLASS, (MULTICLASS,)),
    "positive_example_weight_mult": ("predictor_type", BINARY, (BINARY,)),
    "binary_classifier_model_selection_criteria": ("predictor_type", BINARY, (BINARY,)),
    "target_recall": ("predictor_type", BINARY, (BINARY,)),
    "target_precision": ("predictor_type", BINARY, (BINARY,)),
    "normalize_label": ("predictor_type", REGRESSOR, (REGRESSOR,)),
    "unbias_label": ("predictor_type", REGRESSOR, (REGRESSOR,)),
}


def resolved_loss(values: dict[str, Any]) -> str:
    """``loss=auto`` per predictor type: logistic, softmax_loss or squared_loss."""
    loss = str(values["loss"])
    if loss != "auto":
        return loss
    return {BINARY: "logistic", MULTICLASS: "softmax_loss", REGRESSOR: "squared_loss"}[
        values["predictor_type"]
    ]


def resolved_optimizer(values: dict[str, Any]) -> str:
    return "adam" if values["optimizer"] == "auto" else str(values["optimizer"])


def check_hyperparameters(values: dict[str, Any]) -> None:
    """Rules across parameters: num_classes for multiclass, a loss that fits the predictor type."""
    predictor = values["predictor_type"]
    if predictor == MULTICLASS:
        if values.get("num_classes") is None:
            raise HyperparameterError(
                "HyperParameters: 'num_classes' is required when predictor_type is multiclass_classifier"
            )
        if values["num_classes"] < 3:
            raise HyperparameterError(
                f"Value '{values['num_classes']}' at 'HyperParameters.num_classes' failed to satisfy constraint: "
                "Member must be an integer from 3 to 1000000 when predictor_type is multiclass_classifier "
                "(use binary_classifier for two classes)"
            )
    loss = values["loss"]
    if loss != "auto" and loss not in LOSSES_BY_PREDICTOR[predictor]:
        raise HyperparameterError(
            f"Value '{loss}' at 'HyperParameters.loss' failed to satisfy constraint: Member must be one of "
            f"[auto, {', '.join(LOSSES_BY_PREDICTOR[predictor])}] when predictor_type is {predictor}"
        )


def ignored_parameters(values: dict[str, Any], provided: set[str]) -> list[str]:
    """Warning texts for provided parameters the chosen optimizer, loss or predictor type never reads."""
    current = {
        "optimizer": resolved_optimizer(values),
        "loss": resolved_loss(values),
        "predictor_type": values["predictor_type"],
    }
    notes = []
    for name in sorted(provided):
        rule = _ONLY_FOR.get(name)
        if rule is None or values.get(name) == AUTO:
            continue
        key, wanted, users = rule
        if current[key] not in users:
            notes.append(f"{name} is used only when {key} is {wanted}; ignored for {key}={current[key]}")
    return notes
