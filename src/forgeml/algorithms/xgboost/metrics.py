"""XGBoost's metric names, their direction, and the regexes SageMaker attaches to them.

Kept free of numpy/xgboost imports: the registry imports this with the algorithm declaration.

The container prints one evaluation line per boosting round, ``[12]\\ttrain-rmse:1.25702\\t...``,
and CloudWatch renders the TAB as ``#011``, so SageMaker's regexes (and every copy of them in
users' notebooks) read ``.*\\[[0-9]+\\].*#011validation-rmse:(...)``. forgeml's log store keeps
raw lines and cannot re-render them, so ``train`` prints the literal characters ``#011`` where
the TAB was: the lines then look exactly like CloudWatch shows them (what users already see from
``sagemaker``'s ``logs=True``) and SageMaker's regexes match unchanged. Our own definitions
also accept a real TAB, so lines from an xgboost ``EvaluationMonitor`` (script mode) match too.
"""

from __future__ import annotations

#: metrics the container maximizes (1.7-1 list); ``interval-regression-accuracy`` is listed as
#: minimize by the container, which makes early stopping pick the worst round. forgeml treats it
#: as maximize, as XGBoost itself does.
MAXIMIZE = (
    "accuracy",
    "auc",
    "aucpr",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "interval-regression-accuracy",
    "map",
    "ndcg",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
)

MINIMIZE = (
    "aft-nloglik",
    "cox-nloglik",
    "error",
    "gamma-deviance",
    "gamma-nloglik",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "mphe",
    "mse",
    "poisson-nloglik",
    "rmse",
    "rmsle",
    "tweedie-nloglik",
)

#: every name ``eval_metric`` accepts (besides ``error@t``, ``ndcg@t``, ``map@t``)
METRIC_NAMES = tuple(sorted(MAXIMIZE + MINIMIZE))

#: computed by the container with scikit-learn semantics instead of by XGBoost (1.3-1+ list);
#: naming ``rmse``/``mae`` in ``eval_metric`` therefore replaces XGBoost's own (weighted) version.
CUSTOM_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "mae",
    "mse",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
    "rmse",
)

#: ``name@t`` forms the container accepts (``t`` must parse as a float)
THRESHOLD_METRICS = ("error", "ndcg", "map")

SPLITS = ("train", "validation")

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def base_name(metric: str) -> str:
    """``ndcg@5`` -> ``ndcg``: the name that decides the direction."""
    return metric.split("@", 1)[0]


def maximize(metric: str) -> bool:
    return base_name(metric) in MAXIMIZE


def metric_regex(split: str, metric: str) -> str:
    """SageMaker's service-side regex for ``<split>:<metric>``, accepting ``#011`` or a TAB."""
    return rf".*\[[0-9]+\].*(?:#011|\t){split}-{metric}:{_NUMBER}.*"


def metric_definitions() -> tuple[dict[str, str], ...]:
    """``train:<m>`` and ``validation:<m>`` for every metric the container knows."""
    return tuple(
        {"Name": f"{split}:{metric}", "Regex": metric_regex(split, metric)}
        for split in SPLITS
        for metric in METRIC_NAMES
    )
