"""XGBoost training in algorithm mode: the container's ``train_job``, natively.

One ``xgboost.train`` call on the train channel with ``[train, validation]`` as the watchlist,
early stopping on the validation data, checkpoints when the job has a checkpoint folder, and the
booster saved as ``xgboost-model``. ``_kfold`` switches to the container's cross-validation mode.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xgboost as xgb
from xgboost.callback import EarlyStopping, TrainingCallback

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.xgboost import config
from forgeml.algorithms.xgboost.callbacks import (
    CheckpointSaver,
    EvalLinePrinter,
    StopOnSigterm,
    load_checkpoint,
)
from forgeml.algorithms.xgboost.custom_metrics import make_custom_metric
from forgeml.algorithms.xgboost.data import Labelled, align, build_matrix, read_channel, warn_duplicate_files
from forgeml.algorithms.xgboost.gpu import gpu_available
from forgeml.data import content_types as ct
from forgeml.errors import AlgorithmError, ClientError

MODEL_NAME = "xgboost-model"
_XGBOOST_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: ")

#: XGBoost errors that are about the job's data or hyperparameters, not the algorithm
CUSTOMER_ERRORS = (
    "label must",
    "labels must",
    "label_lower_bound",
    "label_upper_bound",
    "base_score must be in",
    "feature_names mismatch",
    "Feature shape mismatch",
    "Invalid Input",
    "Invalid Parameter",
    "Unknown objective",
    "Unknown metric",
    "Unknown tree updater",
    "must be positive",
    "must be non-negative",
    "should be greater",
    "must be greater",
    "must be equal to or greater",
    "must be less",
    "No more tree left for updating",
    "can only be used with binary labels",
    "num_class",
)


def save_booster(booster: xgb.Booster, path: Path) -> None:
    """XGBoost's own format (UBJSON), the format ``save_model`` picks for an extension-less name."""
    path.write_bytes(booster.save_raw("ubj"))


def train(ctx: TrainingContext) -> None:
    """The job's training: read and check the channels, train (or cross-validate), save the model."""
    plan = config.plan(ctx.hyperparameters, ctx.num_cpus)
    ctx.log.info(f"Determined {ctx.num_gpus} GPU(s) available on the instance.")
    _check_gpu(ctx, plan)
    warn_duplicate_files(ctx)
    train = read_channel(ctx, "train", plan)
    assert train is not None  # the harness enforces the required channel
    validation = read_channel(ctx, "validation", plan)
    align(train, validation)
    ctx.log.info(f"Train matrix has {train.n_rows} rows and {train.n_features} columns")
    if validation is not None:
        ctx.log.info(f"Validation matrix has {validation.n_rows} rows")
    if plan.early_stopping_rounds and validation is None and not plan.kfold:
        ctx.log.warning(
            "early_stopping_rounds is set but there is no validation channel: training runs all num_round rounds"
        )
    with _xgboost_errors(), _warnings_to_log(ctx):
        if plan.kfold:
            from forgeml.algorithms.xgboost.kfold import run_kfold

            run_kfold(ctx, plan, train, validation)
        else:
            _train_single(ctx, plan, train, validation)


def _check_gpu(ctx: TrainingContext, plan: config.TrainingPlan) -> None:
    if not plan.wants_gpu:
        return
    if not gpu_available(ctx.num_gpus):
        raise ClientError(
            "GPU training was requested (tree_method=gpu_hist, device=cuda, predictor=gpu_predictor or "
            "use_dask_gpu_training=true) but this training job has no GPU; use a GPU instance type or "
            "tree_method=hist on CPU"
        )
    if ctx.hyperparameters.get("use_dask_gpu_training") == "true":
        for name, channel in ctx.channels.items():
            if ct.canonical_mime(channel.content_type) not in (ct.CSV, ct.PARQUET) or channel.input_mode != "File":
                raise ClientError(
                    f"Some configurations unsuitable for Dask GPU training were found: channel '{name}' must be "
                    "text/csv or application/x-parquet in File mode"
                )


def early_stopping(plan: config.TrainingPlan) -> EarlyStopping:
    """The 1.7-1 container's rule: stop on the validation data's chosen metric, keep the best model."""
    return EarlyStopping(
        rounds=int(plan.early_stopping_rounds or 0),
        metric_name=plan.early_stopping_metric,
        data_name="validation",
        maximize=plan.early_stopping_maximize(),
        # the container saves the best model; gblinear cannot be sliced, so it keeps every round
        save_best=plan.booster != "gblinear",
    )


def fit(
    plan: config.TrainingPlan,
    train: Any,
    validation: Any,
    callbacks: list[TrainingCallback],
    rounds: int,
    base: xgb.Booster | None = None,
    history: dict[str, Any] | None = None,
) -> xgb.Booster:
    """One ``xgboost.train`` call with the container's watchlist, metrics and early stopping."""
    evals = [(train, "train")]
    if validation is not None:
        evals.append((validation, "validation"))
        if plan.early_stopping_rounds:
            callbacks = [*callbacks, early_stopping(plan)]
    custom = make_custom_metric(plan.custom_metrics, plan.objective) if plan.custom_metrics else None
    return xgb.train(
        plan.params,
        train,
        num_boost_round=rounds,
        evals=evals,
        custom_metric=custom,
        callbacks=callbacks,
        xgb_model=base,
        evals_result=history,
        verbose_eval=False,
    )


def _train_single(ctx: TrainingContext, plan: config.TrainingPlan, train: Labelled, validation: Labelled | None) -> None:
    dtrain = build_matrix(train, plan)
    dvalidation = build_matrix(validation, plan, ref=dtrain) if validation is not None else None
    base, done = load_checkpoint(ctx.checkpoint_dir, ctx.log)
    callbacks: list[TrainingCallback] = [EvalLinePrinter(ctx.log.stream, offset=done)]
    if ctx.checkpoint_dir is not None:
        callbacks.append(CheckpointSaver(ctx.checkpoint_dir, start=done))
    guard = StopOnSigterm(ctx.log) if plan.save_model_on_termination else None
    if guard is not None:
        callbacks.append(guard)
    try:
        booster = fit(plan, dtrain, dvalidation, callbacks, max(plan.num_round - done, 0), base)
        if booster.attr("best_iteration") is not None and plan.early_stopping_rounds:
            ctx.log.info(
                f"Best iteration: [{booster.attr('best_iteration')}] validation score {booster.attr('best_score')}"
            )
        save_booster(booster, ctx.model_dir / MODEL_NAME)
    finally:
        if guard is not None:
            guard.restore()


@contextmanager
def _xgboost_errors() -> Any:
    """XGBoost failures caused by the job's input become ClientErrors, the rest AlgorithmErrors."""
    try:
        yield
    except xgb.core.XGBoostError as exc:
        # drop XGBoost's "[12:07:41] /path/to/file.cc:83: " prefix and its native stack trace
        message = _XGBOOST_PREFIX.sub("", str(exc).split("Stack trace:")[0].strip())
        if any(marker in message for marker in CUSTOMER_ERRORS):
            raise ClientError(message) from exc
        raise AlgorithmError(f"XGB train call failed with exception:\n {message}") from exc


@contextmanager
def _warnings_to_log(ctx: TrainingContext) -> Any:
    """XGBoost's warnings (unused parameters, deprecations) go to the job log, not stderr only."""
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        ctx.log.warning(" ".join(str(message).split()))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield
