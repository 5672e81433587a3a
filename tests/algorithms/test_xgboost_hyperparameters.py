"""XGBoost hyperparameters: the container's names, ranges and cross-field rules, and what reaches XGBoost."""

from __future__ import annotations

import pytest

from forgeml.algorithms import get_algorithm
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.xgboost import config
from forgeml.algorithms.xgboost.metrics import MAXIMIZE, METRIC_NAMES, maximize, metric_definitions

ALGORITHM = get_algorithm("xgboost")


def validate(**raw: str) -> dict:
    return ALGORITHM.validate_hyperparameters({"num_round": "10", **raw})


def test_defaults_fall_through_to_xgboost() -> None:
    values = validate()
    assert values["num_round"] == 10
    assert values["csv_weights"] == 0
    assert values["save_model_on_termination"] == "false"
    # the container declares no defaults: nothing else is passed to XGBoost
    plan = config.plan(values, num_cpus=2)
    assert plan.params == {"nthread": 2, "objective": "reg:squarederror"}
    assert plan.native_metrics == [] and plan.custom_metrics == []


def test_every_documented_hyperparameter_is_accepted() -> None:
    raw = {
        "num_class": "3", "objective": "multi:softprob", "eval_metric": "mlogloss,merror", "csv_weights": "1",
        "early_stopping_rounds": "5", "booster": "gbtree", "verbosity": "2", "nthread": "1", "eta": "0.2",
        "gamma": "0.5", "max_depth": "4", "min_child_weight": "2", "max_delta_step": "1.5", "subsample": "0.8",
        "colsample_bytree": "0.9", "colsample_bylevel": "0.9", "colsample_bynode": "0.9", "lambda": "2",
        "alpha": "0.1", "tree_method": "hist", "scale_pos_weight": "1", "dsplit": "row", "refresh_leaf": "1",
        "process_type": "default", "grow_policy": "lossguide", "max_leaves": "8", "max_bin": "64",
        "predictor": "cpu_predictor", "monotone_constraints": "(0,1)", "interaction_constraints": "[[0,1]]",
        "sample_type": "uniform", "normalize_type": "tree", "rate_drop": "0.1", "one_drop": "0",
        "skip_drop": "0.2", "lambda_bias": "0", "tweedie_variance_power": "1.5", "base_score": "0.5",
        "seed": "7", "num_parallel_tree": "1", "save_model_on_termination": "true",
        "aft_loss_distribution": "normal", "aft_loss_distribution_scale": "1.0",
        "deterministic_histogram": "true", "sampling_method": "uniform", "prob_buffer_row": "2",
        "use_dask_gpu_training": "false", "_tuning_objective_metric": "validation:merror",
    }
    values = validate(**raw)
    plan = config.plan(values, num_cpus=4)
    assert plan.params["objective"] == "multi:softprob" and plan.params["num_class"] == 3
    assert plan.params["monotone_constraints"] == "(0,1)"
    assert plan.params["interaction_constraints"] == "[[0,1]]"
    assert plan.params["nthread"] == 1 and plan.params["max_bin"] == 64
    # meaningless on one host, so never handed to XGBoost
    for key in ("dsplit", "deterministic_histogram", "prob_buffer_row", "predictor", "lambda_bias", "csv_weights"):
        assert key not in plan.params
    # the tuning objective is unioned with eval_metric (sorted) and drives early stopping
    assert plan.native_metrics == ["merror", "mlogloss"]
    assert plan.early_stopping_metric == "merror" and plan.early_stopping_maximize() is False
    assert plan.save_model_on_termination and plan.csv_weights


def test_aliases_map_to_canonical_names() -> None:
    plan = config.plan(validate(learning_rate="0.1", min_split_loss="1", reg_lambda="3", reg_alpha="0.5"), 1)
    assert (plan.params["eta"], plan.params["gamma"], plan.params["lambda"], plan.params["alpha"]) == (0.1, 1, 3, 0.5)
    with pytest.raises(HyperparameterError, match="learning_rate"):
        validate(learning_rate="0.1", eta="0.2")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"num_roundz": "3"}, "num_roundz"),  # unknown name
        ({"silent": "1"}, "silent"),  # 1.0-1 only, not in 1.7-1
        ({"eta": "abc"}, "eta"),  # bad type
        ({"max_depth": "2.5"}, "max_depth"),  # not an integer
        ({"eta": "1.5"}, "eta"),  # out of range
        ({"subsample": "0"}, "subsample"),  # (0, 1]
        ({"tweedie_variance_power": "2"}, "tweedie_variance_power"),  # (1, 2)
        ({"num_class": "1", "objective": "multi:softmax"}, "num_class"),
        ({"objective": "reg:nonsense"}, "objective"),
        ({"tree_method": "gpu_exact"}, "tree_method"),
        ({"eval_metric": "rmse,bogus"}, "eval_metric"),
        ({"eval_metric": "rmse@0.5"}, "eval_metric"),
        ({"eval_metric": "error@high"}, "eval_metric"),
        ({"seed": str(2**31)}, "seed"),
        ({"device": "tpu"}, "device"),
        ({"_tuning_objective_metric": "train:rmse"}, "_tuning_objective_metric"),
    ],
)
def test_invalid_values_name_the_parameter(raw: dict, name: str) -> None:
    with pytest.raises(HyperparameterError, match=name):
        validate(**raw)


def test_num_round_is_required() -> None:
    with pytest.raises(HyperparameterError, match="num_round"):
        ALGORITHM.validate_hyperparameters({"eta": "0.1"})


@pytest.mark.parametrize(
    ("raw", "name", "rule"),
    [
        ({"objective": "multi:softmax"}, "num_class", "multi-classification"),
        ({"objective": "binary:logistic", "num_class": "2"}, "num_class", "only used by multi"),
        ({"eval_metric": "auc"}, "eval_metric", "classification and ranking"),
        ({"eval_metric": "aft-nloglik"}, "eval_metric", "survival:aft"),
        ({"monotone_constraints": "(1,0)"}, "monotone_constraints", "exact' or 'hist"),
        ({"monotone_constraints": "(2,0)", "tree_method": "hist"}, "monotone_constraints", "-1, 0 and 1"),
        ({"interaction_constraints": "[[0,1]]", "tree_method": "auto"}, "interaction_constraints", "approx"),
        ({"interaction_constraints": "[0,1]", "tree_method": "hist"}, "interaction_constraints", "nested list"),
        ({"booster": "gblinear", "updater": "grow_colmaker"}, "updater", "shotgun"),
        ({"process_type": "update", "updater": "grow_colmaker"}, "updater", "refresh"),
        ({"updater": "grow_colmaker,grow_histmaker"}, "updater", "Only one tree grow plugin"),
        ({"updater": "distcol"}, "updater", "no longer exists"),
        ({"updater": "grow_local_histmaker"}, "updater", "Tree updater should be"),
        ({"lambda_bias": "0.5"}, "lambda_bias", "must be 0"),
        ({"sketch_eps": "0.1", "tree_method": "hist"}, "sketch_eps", "approx"),
        ({"_num_cv_round": "2"}, "_num_cv_round", "_kfold"),
        ({"device": "cpu", "tree_method": "gpu_hist"}, "device", "gpu_hist"),
    ],
)
def test_cross_field_rules(raw: dict, name: str, rule: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        validate(**raw)
    assert name in str(caught.value) and rule in str(caught.value)


def test_accepted_cross_field_combinations() -> None:
    validate(objective="binary:logistic", eval_metric="auc,error@0.7")
    validate(objective="rank:pairwise", eval_metric="ndcg@5,map@3,auc")
    validate(objective="survival:aft", eval_metric="aft-nloglik")
    validate(booster="gblinear", updater="coord_descent")
    validate(process_type="update", updater="refresh,prune")
    validate(updater="grow_quantile_histmaker,prune")
    validate(tree_method="approx", sketch_eps="0.05")
    validate(eval_metric='["rmse", "mae"]')


def test_custom_and_native_metrics_are_split_like_the_container() -> None:
    plan = config.plan(validate(objective="binary:logistic", eval_metric="logloss,accuracy,f1", early_stopping_rounds="3"), 1)
    assert plan.params["eval_metric"] == ["logloss"]
    assert plan.custom_metrics == ["accuracy", "f1"]
    # early stopping follows the last eval_metric entry, maximized per the container's list
    assert plan.early_stopping_metric == "f1" and plan.early_stopping_maximize() is True
    # only custom metrics: XGBoost keeps its default metric for the objective
    plan = config.plan(validate(objective="reg:squarederror", eval_metric="rmse,r2"), 1)
    assert "eval_metric" not in plan.params and plan.custom_metrics == ["rmse", "r2"]


def test_legacy_default_metric_names() -> None:
    # XGBoost 3 would print map@32 / gamma-deviance; SageMaker's 1.7 images print map / gamma-nloglik
    assert config.plan(validate(objective="rank:pairwise"), 1).params["eval_metric"] == ["map"]
    assert config.plan(validate(objective="rank:ndcg"), 1).params["eval_metric"] == ["ndcg"]
    assert config.plan(validate(objective="reg:gamma"), 1).params["eval_metric"] == ["gamma-nloglik"]


def test_gpu_requests_map_to_device_cuda() -> None:
    plan = config.plan(validate(tree_method="gpu_hist"), 1)
    assert plan.wants_gpu and plan.params["tree_method"] == "hist" and plan.params["device"] == "cuda"
    assert config.plan(validate(device="gpu:1"), 1).params["device"] == "cuda:1"
    assert config.plan(validate(predictor="gpu_predictor"), 1).wants_gpu
    cpu = config.plan(validate(device="cpu", tree_method="hist"), 1)
    assert not cpu.wants_gpu and cpu.params["device"] == "cpu"


def test_sketch_eps_sizes_the_approx_sketch() -> None:
    assert config.plan(validate(tree_method="approx", sketch_eps="0.05"), 1).params["max_bin"] == 20
    assert config.plan(validate(tree_method="approx", sketch_eps="0.05", max_bin="64"), 1).params["max_bin"] == 64


def test_quantile_matrix_only_for_histogram_growth() -> None:
    assert config.plan(validate(), 1).quantile_ready()
    assert config.plan(validate(tree_method="hist", booster="dart"), 1).quantile_ready()
    assert not config.plan(validate(tree_method="exact"), 1).quantile_ready()
    assert not config.plan(validate(booster="gblinear"), 1).quantile_ready()
    assert not config.plan(validate(updater="grow_colmaker,prune"), 1).quantile_ready()


def test_metric_definitions_cover_train_and_validation() -> None:
    definitions = {d["Name"]: d["Regex"] for d in metric_definitions()}
    for metric in ("auc", "rmse", "mae", "logloss", "error", "merror", "mlogloss", "ndcg", "map", "aucpr",
                   "mse", "f1", "accuracy", "r2", "gamma-nloglik", "poisson-nloglik", "cox-nloglik"):
        assert f"train:{metric}" in definitions and f"validation:{metric}" in definitions
    assert len(definitions) == 2 * len(METRIC_NAMES)
    # SageMaker's own regex shape, matching CloudWatch's #011 and a raw TAB alike
    assert ALGORITHM.match_metric("validation:auc", "[12]#011train-auc:0.9#011validation-auc:0.87654") == 0.87654
    assert ALGORITHM.match_metric("validation:auc", "[12]\ttrain-auc:0.9\tvalidation-auc:0.5") == 0.5
    assert ALGORITHM.match_metric("train:auc", "[3]#011train-aucpr:0.7#011train-auc:0.25") == 0.25
    assert ALGORITHM.match_metric("validation:rmse", "[3]#011validation-rmsle:0.1") is None
    assert maximize("ndcg@5") and maximize("interval-regression-accuracy") and not maximize("error@0.3")
    assert set(MAXIMIZE) <= set(METRIC_NAMES)
