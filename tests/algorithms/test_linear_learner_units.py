"""Linear Learner: hyperparameter schema and the maths pieces (losses, stacked gradients, metrics,
threshold calibration, model grid), each checked against an independent computation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.algorithms.hyperparameters import AUTO, HyperparameterError
from forgeml.algorithms.linear_learner import ALGORITHM
from forgeml.algorithms.linear_learner.ensemble import build_ensemble
from forgeml.algorithms.linear_learner.hyperparameters import ignored_parameters
from forgeml.algorithms.linear_learner.losses import Loss
from forgeml.algorithms.linear_learner.metrics import (
    METRIC_DEFINITIONS,
    binary_report,
    calibrate,
    multiclass_report,
    regression_report,
    roc_auc,
)
from forgeml.algorithms.linear_learner.scaler import Scaler
from forgeml.algorithms.linear_learner.stacked import StackedLinear
from forgeml.algorithms.registry import get_algorithm

# -- hyperparameters -------------------------------------------------------------------------------


def validate(**raw: str) -> dict:
    return ALGORITHM.validate_hyperparameters(raw)


def test_registry_serves_the_package_instance() -> None:
    assert get_algorithm("linear-learner") is ALGORITHM
    assert ALGORITHM.display_name == "Linear Learner"
    assert ALGORITHM.default_content_type == "application/x-recordio-protobuf"
    assert [c.name for c in ALGORITHM.channels] == ["train", "validation", "test"]


def test_defaults_match_the_container_dump() -> None:
    values = validate(predictor_type="binary_classifier")
    assert values["mini_batch_size"] == 1000
    assert values["epochs"] == 15
    assert values["learning_rate"] == AUTO
    assert values["num_models"] == AUTO
    assert values["use_bias"] is True
    assert values["normalize_data"] is True
    assert values["normalize_label"] == AUTO
    assert values["num_point_for_scaler"] == 10_000
    assert values["early_stopping_patience"] == 3
    assert values["early_stopping_tolerance"] == 0.001
    assert values["binary_classifier_model_selection_criteria"] == "accuracy"
    assert values["positive_example_weight_mult"] == 1.0
    assert values["num_calibration_samples"] == 10_000_000
    assert values["init_scale"] == 0.07 and values["init_sigma"] == 0.01
    assert values["accuracy_top_k"] == 3 and values["f_beta"] == 1.0


def test_strings_are_typed_like_the_sdk_sends_them() -> None:
    values = validate(
        predictor_type="multiclass_classifier",
        num_classes="3",
        feature_dim="22",
        use_bias="True",
        learning_rate="0.04380096472026997",
        normalize_label="false",
        positive_example_weight_mult="Balanced",
        _kvstore="dist_sync",
        _tuning_objective_metric="validation:objective_loss",
    )
    assert values["feature_dim"] == 22 and values["num_classes"] == 3
    assert values["use_bias"] is True and values["normalize_label"] is False
    assert values["learning_rate"] == pytest.approx(0.04380096472026997)
    assert values["positive_example_weight_mult"] == "balanced"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"predictor_type": "regressor", "mini_batch_siz": "10"}, "mini_batch_siz"),  # unknown name
        ({"epochs": "3"}, "predictor_type"),  # missing required
        ({"predictor_type": "regression"}, "predictor_type"),  # bad categorical
        ({"predictor_type": "regressor", "epochs": "ten"}, "epochs"),  # bad type
        ({"predictor_type": "regressor", "epochs": "1.5"}, "epochs"),  # not an integer
        ({"predictor_type": "regressor", "epochs": "0"}, "epochs"),  # out of range
        ({"predictor_type": "regressor", "learning_rate": "0"}, "learning_rate"),  # exclusive bound
        ({"predictor_type": "regressor", "wd": "-1"}, "wd"),
        ({"predictor_type": "regressor", "quantile": "1"}, "quantile"),
        ({"predictor_type": "regressor", "beta_1": "1.0"}, "beta_1"),
        ({"predictor_type": "regressor", "use_bias": "maybe"}, "use_bias"),
        ({"predictor_type": "regressor", "normalize_data": "sometimes"}, "normalize_data"),
        (
            {"predictor_type": "binary_classifier", "positive_example_weight_mult": "0"},
            "positive_example_weight_mult",
        ),
        (
            {"predictor_type": "binary_classifier", "positive_example_weight_mult": "x"},
            "positive_example_weight_mult",
        ),
        ({"predictor_type": "multiclass_classifier"}, "num_classes"),  # cross-field: required
        ({"predictor_type": "multiclass_classifier", "num_classes": "2"}, "num_classes"),  # cross-field: >= 3
        ({"predictor_type": "binary_classifier", "loss": "squared_loss"}, "loss"),  # cross-field: loss/type
        ({"predictor_type": "regressor", "loss": "softmax_loss"}, "loss"),
        ({"predictor_type": "multiclass_classifier", "num_classes": "3", "loss": "logistic"}, "loss"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(raw: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=re.escape(named)):
        ALGORITHM.validate_hyperparameters(raw)


def test_unknown_key_message_has_sagemakers_wording() -> None:
    with pytest.raises(
        HyperparameterError,
        match=r"Additional properties are not allowed \('mini_batch_siz' was unexpected\)",
    ):
        validate(predictor_type="regressor", mini_batch_siz="10")


def test_losses_allowed_per_predictor_type() -> None:
    for loss in (
        "squared_loss",
        "absolute_loss",
        "eps_insensitive_squared_loss",
        "eps_insensitive_absolute_loss",
        "quantile_loss",
        "huber_loss",
        "auto",
    ):
        assert validate(predictor_type="regressor", loss=loss)["loss"] == loss
    for loss in ("logistic", "hinge_loss"):
        assert validate(predictor_type="binary_classifier", loss=loss)["loss"] == loss
    assert (
        validate(predictor_type="multiclass_classifier", num_classes="5", loss="softmax_loss")["loss"]
        == "softmax_loss"
    )


def test_parameters_the_chosen_setup_never_reads_are_reported() -> None:
    values = validate(predictor_type="regressor", optimizer="sgd", beta_1="0.8", margin="2", momentum="0.5")
    notes = ignored_parameters(values, {"predictor_type", "optimizer", "beta_1", "margin", "momentum"})
    assert notes == [
        "beta_1 is used only when optimizer is adam; ignored for optimizer=sgd",
        "margin is used only when loss is hinge_loss; ignored for loss=squared_loss",
    ]


def test_metric_definitions_are_sagemakers() -> None:
    names = ALGORITHM.metric_names()
    assert len(names) == len(set(names)) <= 40
    for required in (
        "train:objective_loss",
        "validation:objective_loss",
        "train:objective_loss:final",
        "validation:objective_loss:final",
        "test:objective_loss",
        "validation:binary_classification_accuracy",
        "validation:binary_f_beta",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
        "validation:multiclass_accuracy",
        "validation:multiclass_top_k_accuracy",
        "validation:dcg",
        "validation:macro_f_beta",
        "validation:macro_precision",
        "validation:macro_recall",
        "validation:mse",
        "validation:rmse",
        "validation:absolute_loss",
        "test:mse",
        "test:multiclass_accuracy",
        "train:progress",
        "train:throughput",
    ):
        assert required in names
    by_name = {d["Name"]: d["Regex"] for d in METRIC_DEFINITIONS}
    assert (
        by_name["validation:binary_f_beta"]
        == r"#quality_metric: host=\S+, validation binary_f_\S+ <score>=(\S+)"
    )
    assert by_name["validation:objective_loss"] == (
        r"#quality_metric: host=\S+, epoch=\S+, validation \S+_objective <loss>=(\S+)"
    )
    # The observed SageMaker log line matches.
    line = "[07/09/2024 22:20:57 INFO 1399] #quality_metric: host=algo-1, validation multiclass_accuracy <score>=0.9469825155104343"
    assert ALGORITHM.match_metric("validation:multiclass_accuracy", line) == pytest.approx(0.9469825155104343)


# -- the parallel models ---------------------------------------------------------------------------


def test_user_values_are_kept_and_auto_values_spread() -> None:
    values = validate(
        predictor_type="multiclass_classifier", num_classes="3", learning_rate="0.05", wd="0.002", l1="0.0006"
    )
    ensemble = build_ensemble(values, "adam", 3, 22, tuning=False)
    assert (
        np.all(ensemble.learning_rate == 0.05)
        and np.all(ensemble.wd == 0.002)
        and np.all(ensemble.l1 == 0.0006)
    )
    # scheduler knobs are auto: 3 steps x 4 factors, every combination once, model 0 the central one
    combos = {
        (int(s), float(f)) for s, f in zip(ensemble.scheduler_step, ensemble.scheduler_factor, strict=True)
    }
    assert ensemble.size == len(combos) == 12
    assert ensemble.describe(0) == {
        "optimizer": "adam",
        "learning_rate": 0.05,
        "wd": 0.002,
        "l1": 0.0006,
        "lr_scheduler_step": 100,
        "lr_scheduler_factor": 0.99,
        "lr_scheduler_minimum_lr": 1e-05,
    }


def test_num_models_auto_tuning_and_explicit() -> None:
    values = validate(predictor_type="binary_classifier")
    assert build_ensemble(values, "adam", 1, 10, tuning=False).size == 32
    assert build_ensemble(values, "adam", 1, 10, tuning=True).size == 1
    assert (
        build_ensemble(
            validate(predictor_type="binary_classifier", num_models="5"), "adam", 1, 10, False
        ).size
        == 5
    )
    ensemble = build_ensemble(values, "adam", 1, 10, tuning=False)
    assert len(set(ensemble.learning_rate.tolist())) == 7  # the learning rate grid is walked in full


def test_learning_rate_schedule_decays_to_the_floor() -> None:
    values = validate(
        predictor_type="regressor",
        learning_rate="0.1",
        lr_scheduler_step="10",
        lr_scheduler_factor="0.5",
        lr_scheduler_minimum_lr="0.02",
        num_models="1",
    )
    ensemble = build_ensemble(values, "sgd", 1, 4, tuning=False)
    assert ensemble.learning_rates(9, True)[0] == pytest.approx(0.1)
    assert ensemble.learning_rates(10, True)[0] == pytest.approx(0.05)
    assert ensemble.learning_rates(25, True)[0] == pytest.approx(0.025)
    assert ensemble.learning_rates(35, True)[0] == pytest.approx(0.02)
    assert ensemble.learning_rates(35, False)[0] == pytest.approx(0.1)


# -- maths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse_input", [False, True])
def test_folded_normalisation_equals_normalising_the_data(sparse_input: bool) -> None:
    rng = np.random.default_rng(1)
    dense = rng.normal(3.0, 2.0, size=(50, 6)).astype(np.float32)
    dense[dense < 2.5] = 0.0
    scaler = Scaler(dense.mean(axis=0), dense.std(axis=0) + 0.1)
    params = rng.normal(size=(7, 4)).astype(np.float32)
    upstream = rng.normal(size=(50, 4)).astype(np.float32)
    features = sp.csr_matrix(dense) if sparse_input else dense
    stacked = StackedLinear(scaler)
    normalised = (dense.astype(np.float64) - scaler.mean) / scaler.stdev
    expected_outputs = normalised @ params[:-1] + params[-1]
    np.testing.assert_allclose(stacked.outputs(features, params), expected_outputs, rtol=1e-4, atol=1e-4)
    gradient = stacked.gradient(features, upstream)
    np.testing.assert_allclose(gradient[:-1], normalised.T @ upstream, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gradient[-1], upstream.sum(axis=0), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "loss",
    [
        Loss("logistic"),
        Loss("hinge_loss", margin=0.7),
        Loss("squared_loss"),
        Loss("absolute_loss"),
        Loss("eps_insensitive_squared_loss", epsilon=0.05),
        Loss("eps_insensitive_absolute_loss", epsilon=0.05),
        Loss("quantile_loss", quantile=0.8),
        Loss("huber_loss", huber_delta=0.4),
        Loss("softmax_loss"),
    ],
)
def test_loss_gradients_match_finite_differences(loss: Loss) -> None:
    rng = np.random.default_rng(2)
    if loss.name == "softmax_loss":
        z = rng.normal(size=(20, 2, 4))
        y = rng.integers(0, 4, size=20).astype(np.float64)
    else:
        z = rng.normal(size=(20, 3))
        y = (
            rng.integers(0, 2, size=20).astype(np.float64)
            if loss.name in ("logistic", "hinge_loss")
            else rng.normal(size=20)
        )
        # keep away from kinks, where a finite difference straddles two pieces
        kinks = {
            "hinge_loss": [loss.margin * (2 * y - 1)],
            "huber_loss": [y + 0.4, y - 0.4],
            "eps_insensitive_squared_loss": [y + 0.05, y - 0.05],
            "eps_insensitive_absolute_loss": [y + 0.05, y - 0.05],
            "absolute_loss": [y],
            "quantile_loss": [y],
        }.get(loss.name, [])
        for kink in kinks:
            near = np.abs(z - kink[:, None]) < 1e-3
            z[near] += 0.01
    value, grad = loss.value_and_grad(z, y)
    assert grad is not None
    step = 1e-6
    numeric = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        bumped = z.copy()
        bumped[index] += step
        numeric[index] = (loss.value_and_grad(bumped, y, False)[0].sum() - value.sum()) / step
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-4)


def test_label_scale_rewrites_scale_dependent_parameters() -> None:
    loss = Loss("huber_loss", huber_delta=2.0)
    scaled = loss.for_label_scale(4.0)
    residual = np.array([[0.3, 1.0, -7.0]])
    original = loss.value_and_grad(residual, np.zeros(1), False)[0]
    normalised = scaled.value_and_grad(residual / 4.0, np.zeros(1), False)[0]
    np.testing.assert_allclose(normalised * 4.0**loss.scale_power, original)


def test_binary_metrics_agree_with_scikit_learn() -> None:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        fbeta_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=300).astype(np.float32)
    scores = np.round(np.clip(labels * 0.3 + rng.normal(0.35, 0.25, 300), 0, 1), 2).astype(
        np.float32
    )  # with ties
    report = {name: value for name, value, _ in binary_report(("x_objective", 0.1), scores, labels, 0.5, 1.0)}
    predicted = scores >= 0.5
    assert report["binary_classification_accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert report["binary_f_1.000"] == pytest.approx(f1_score(labels, predicted))
    assert report["precision"] == pytest.approx(precision_score(labels, predicted))
    assert report["recall"] == pytest.approx(recall_score(labels, predicted))
    assert report["roc_auc_score"] == pytest.approx(roc_auc_score(labels, scores))
    half = {name: value for name, value, _ in binary_report(("x_objective", 0.1), scores, labels, 0.5, 0.5)}
    assert half["binary_f_0.500"] == pytest.approx(fbeta_score(labels, predicted, beta=0.5))
    assert np.isnan(roc_auc(scores, np.ones_like(labels)))


def test_multiclass_metrics_agree_with_scikit_learn() -> None:
    from sklearn.metrics import (
        balanced_accuracy_score,
        log_loss,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, size=400)
    logits = rng.normal(size=(400, 5)) + 1.5 * np.eye(5)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    report = {
        n: v
        for n, v, _ in multiclass_report(
            ("m_objective", 0.0), probabilities, labels.astype(np.float32), 2, 1.0
        )
    }
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="macro", zero_division=0
    )
    assert report["multiclass_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert report["multiclass_top_k_accuracy_2"] == pytest.approx(
        top_k_accuracy_score(labels, probabilities, k=2)
    )
    assert report["macro_precision"] == pytest.approx(precision)
    assert report["macro_recall"] == pytest.approx(recall)
    assert report["macro_f_1.000"] == pytest.approx(f1)
    assert report["multiclass_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert report["multiclass_log_loss"] == pytest.approx(log_loss(labels, probabilities))
    rank = (probabilities > probabilities[np.arange(400), labels][:, None]).sum(axis=1) + 1
    assert report["dcg"] == pytest.approx(np.mean(1 / np.log2(1 + rank)))


def test_regression_metrics() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(5)
    labels = rng.normal(10, 3, size=100)
    predictions = labels + rng.normal(0, 1, size=100)
    report = {n: v for n, v, _ in regression_report(("mse_objective", 1.0), predictions, labels)}
    assert report["mse"] == pytest.approx(mean_squared_error(labels, predictions))
    assert report["rmse"] == pytest.approx(np.sqrt(mean_squared_error(labels, predictions)))
    assert report["absolute_loss"] == pytest.approx(mean_absolute_error(labels, predictions))
    assert report["r2"] == pytest.approx(r2_score(labels, predictions))


def _brute_force(scores: np.ndarray, labels: np.ndarray, score_of) -> float:  # type: ignore[no-untyped-def]
    best = -1.0
    for threshold in np.concatenate([np.unique(scores), [np.inf]]):
        predicted = scores >= threshold
        tp = np.sum(predicted & (labels == 1))
        fp = np.sum(predicted & (labels == 0))
        fn = np.sum(~predicted & (labels == 1))
        tn = np.sum(~predicted & (labels == 0))
        best = max(best, score_of(tp, fp, fn, tn))
    return best


def test_calibration_finds_the_best_threshold_per_model() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, size=200).astype(np.float32)
    scores = np.round(rng.normal(size=(200, 3)) + labels[:, None] * np.array([0.5, 1.0, 2.0]), 1).astype(
        np.float32
    )
    thresholds, values = calibrate(scores, labels, "accuracy")
    for model in range(3):
        expected = _brute_force(scores[:, model], labels, lambda tp, fp, fn, tn: (tp + tn) / 200)
        assert values[model] == pytest.approx(expected)
        assert np.mean((scores[:, model] >= thresholds[model]) == labels) == pytest.approx(expected)
    assert np.argmax(values) == 2

    def f1(tp: int, fp: int, fn: int, tn: int) -> float:
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    _, f_values = calibrate(scores, labels, "f_beta", beta=1.0)
    assert f_values[1] == pytest.approx(_brute_force(scores[:, 1], labels, f1))
    thresholds, values = calibrate(scores, labels, "precision_at_target_recall", target_recall=0.9)
    for model in range(3):
        predicted = scores[:, model] >= thresholds[model]
        recall = np.sum(predicted & (labels == 1)) / np.sum(labels == 1)
        assert recall >= 0.9
        assert values[model] == pytest.approx(np.sum(predicted & (labels == 1)) / np.sum(predicted))
    thresholds, values = calibrate(scores, labels, "recall_at_target_precision", target_precision=0.85)
    predicted = scores[:, 2] >= thresholds[2]
    assert np.sum(predicted & (labels == 1)) / np.sum(predicted) >= 0.85
    assert values[2] == pytest.approx(np.sum(predicted & (labels == 1)) / np.sum(labels == 1))
