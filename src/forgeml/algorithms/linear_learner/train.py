"""Training: every parallel model in one stacked matrix, one pass of mini-batches per epoch.

The parameters of all ``M`` models sit in a ``(features + 1) × (M · outputs)`` float32 matrix
(last row: bias), so each mini-batch costs one product ``X @ W`` for the outputs of every model
and one ``Xᵀ @ G`` for every gradient. Feature normalisation is folded into those products (see
``scaler``), so data is never copied or densified.

Per epoch each model's monitored value is recorded (validation loss, the binary selection
criterion on a validation sample, or the training loss without validation); each model keeps the
parameters of its best epoch, and training stops early when the best value over all models has
not improved by ``early_stopping_tolerance`` (relative) for ``early_stopping_patience`` epochs.
The model that scores best is then calibrated (binary threshold), scored on validation and test,
and saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.hyperparameters import AUTO
from forgeml.algorithms.linear_learner import metrics
from forgeml.algorithms.linear_learner.data import Batch, BatchChecker, EvalData, TrainData
from forgeml.algorithms.linear_learner.ensemble import build_ensemble
from forgeml.algorithms.linear_learner.hyperparameters import (
    BINARY,
    MULTICLASS,
    SCHEMA,
    ignored_parameters,
    resolved_loss,
    resolved_optimizer,
)
from forgeml.algorithms.linear_learner.losses import Loss, sigmoid, softmax
from forgeml.algorithms.linear_learner.model import LinearModel
from forgeml.algorithms.linear_learner.optimizers import Optimizer
from forgeml.algorithms.linear_learner.scaler import Scaler, fit_scaler, switches
from forgeml.algorithms.linear_learner.stacked import StackedLinear
from forgeml.errors import ClientError

SEED = 1729
# Rows of validation scores kept per epoch for the binary early-stopping criterion ("sampled_*").
CRITERION_SAMPLE = 20_000
# Below this many multiply-adds per batch product, BLAS runs single-threaded.
SMALL_PRODUCT = 1 << 23
# Bound on rows × columns of the output matrix of one evaluation chunk.
EVAL_CELLS = 1 << 22
# Auto values of the optimizer knobs (the older Spark docstrings; UNVERIFIED for today's container).
AUTO_BETA_1 = 0.9
AUTO_BETA_2 = 0.999
AUTO_MOMENTUM = 0.0
AUTO_BIAS_LR_MULT = 10.0
AUTO_BIAS_WD_MULT = 0.0


def finite_or_nan(values: np.ndarray) -> np.ndarray:
    """Per-model values with overflowed (infinite) entries marked NaN, as diverged."""
    return np.where(np.isfinite(values), values, np.nan)


def smallest(values: np.ndarray) -> float:
    """The smallest non-NaN value; NaN when every model diverged."""
    finite = values[~np.isnan(values)]
    return float(finite.min()) if finite.size else float("nan")


@dataclass
class Tracker:
    """Per-model best values and the early-stopping state over all models."""

    keys: np.ndarray  # monitored value, lower is better (scores are negated)
    tie_breaks: np.ndarray  # the loss, deciding between equal monitored values (e.g. accuracy)
    train_loss_at_best: np.ndarray
    best_overall: float = np.inf
    stale_epochs: int = 0


def train(ctx: TrainingContext) -> None:
    """Entry point used by ``LinearLearner.train``."""
    LinearLearnerTrainer(ctx).run()


class LinearLearnerTrainer:
    """One training job: settings resolved once, then ``run``."""

    def __init__(self, ctx: TrainingContext) -> None:
        self.ctx = ctx
        self.log = ctx.log
        hp = ctx.hyperparameters
        self.hp = hp
        self.predictor = hp["predictor_type"]
        self.outputs = int(hp["num_classes"]) if self.predictor == MULTICLASS else 1
        self.loss = Loss(
            resolved_loss(hp),
            margin=float(hp["margin"]),
            quantile=float(hp["quantile"]),
            epsilon=float(hp["loss_insensitivity"]),
            huber_delta=float(hp["huber_delta"]),
        )
        self.optimizer_name = resolved_optimizer(hp)
        criterion = hp["binary_classifier_model_selection_criteria"]
        self.criterion = {"f1": "f_beta", "cross_entropy_loss": "loss_function"}.get(criterion, criterion)
        self.beta = 1.0 if criterion == "f1" else float(hp["f_beta"])
        self.tuning = bool(ctx.raw_hyperparameters.get("_tuning_objective_metric"))
        self.rng = np.random.default_rng(SEED)
        self.calibration_rows = (
            int(hp["num_calibration_samples"]) if hp["num_calibration_samples"] != AUTO else 10_000_000
        )

    def _auto(self, name: str, default: float) -> float:
        value = self.hp[name]
        return default if value == AUTO else float(value)

    # -- the job -----------------------------------------------------------------------------------
    def run(self) -> None:
        started = time.perf_counter()
        hp, log = self.hp, self.log
        log.configuration(SCHEMA.defaults(), self.ctx.raw_hyperparameters, hp)
        for note in ignored_parameters(hp, set(self.ctx.raw_hyperparameters)):
            log.warning(note)
        feature_dim = None if hp["feature_dim"] == AUTO else int(hp["feature_dim"])
        self.checker = BatchChecker(self.predictor, hp.get("num_classes"), feature_dim)
        train_channel = self.ctx.channels["train"]
        self.train_data = TrainData(
            train_channel, self.checker, int(hp["mini_batch_size"]), int(hp["num_point_for_scaler"]), self.rng
        )
        self.dim = int(self.checker.feature_dim or 0)
        self._prepare_scaling()
        self.ensemble = build_ensemble(hp, self.optimizer_name, self.outputs, self.dim, self.tuning)
        self._prepare_weights()
        self._init_parameters()
        self.validation = self._eval_data("validation")
        self.test = self._eval_data("test")
        log.info(
            f"Training {self.ensemble.size} model(s) in parallel: optimizer={self.optimizer_name}, "
            f"loss={self.loss.name}, feature_dim={self.dim}, mini_batch_size={hp['mini_batch_size']}"
        )
        initialized = time.perf_counter()
        # overflow in a model whose learning rate is too large turns its loss to NaN, which takes it
        # out of the selection (and fails the job when every model diverges): no warning spam
        with (
            threadpool_limits(limits=self._blas_threads(), user_api="blas"),
            np.errstate(over="ignore", invalid="ignore"),
        ):
            epochs_run, update_seconds = self._train_epochs()
            trained = time.perf_counter()
            self._finish()
        finished = time.perf_counter()
        log.metrics(
            {
                "initialize.time": (initialized - started) * 1000,
                "epochs": float(epochs_run),
                "update.time": update_seconds * 1000,
                "finalize.time": (finished - trained) * 1000,
                "totaltime": (finished - started) * 1000,
            }
        )

    def _blas_threads(self) -> int:
        """BLAS threads for the batch products: one for small products, where thread start-up
        and contention cost more than they save; up to ``num_cpus`` for large ones."""
        cells = int(self.hp["mini_batch_size"]) * self.dim * self.ensemble.size * self.outputs
        return 1 if cells < SMALL_PRODUCT else max(1, self.ctx.num_cpus)

    def _eval_data(self, name: str) -> EvalData | None:
        channel = self.ctx.channels.get(name)
        if channel is None:
            return None
        chunk = max(256, min(65_536, EVAL_CELLS // max(1, self.ensemble.size * self.outputs)))
        return EvalData(channel, self.checker, chunk)

    # -- preparation ---------------------------------------------------------------------------------
    def _prepare_scaling(self) -> None:
        sample = self.train_data.sample
        flags = switches(self.hp, self.train_data.sparse)
        self.scaler: Scaler = fit_scaler(sample.features, sample.labels, flags)
        self.log.info(f"Scaling model computed with parameters: {self.scaler.describe(*flags)}")
        self.stacked = StackedLinear(self.scaler)
        self.train_loss = self.loss.for_label_scale(self.scaler.label_stdev)
        self.loss_unit = float(self.scaler.label_stdev) ** self.loss.scale_power

    def _prepare_weights(self) -> None:
        """Class weights from the scaler sample: positive weight per model, or per-class weights."""
        labels = self.train_data.sample.labels
        self.positive_weight: np.ndarray | None = None
        self.class_weight: np.ndarray | None = None
        if self.predictor == BINARY:
            positives = int(np.count_nonzero(labels == 1))
            ratio = (labels.shape[0] - positives) / positives if positives else 1.0
            setting = self.hp["positive_example_weight_mult"]
            if setting == AUTO:
                exponents = self.ensemble.positive_weight_exponent
                assert exponents is not None
                self.positive_weight = (ratio**exponents).astype(np.float32)
            else:
                weight = ratio if setting == "balanced" else float(setting)
                self.positive_weight = np.full(self.ensemble.size, weight, dtype=np.float32)
        elif self.predictor == MULTICLASS and self.hp["balance_multiclass_weights"]:
            counts = np.bincount(labels.astype(np.intp), minlength=self.outputs).astype(np.float64)
            weights = np.where(counts > 0, labels.shape[0] / (self.outputs * np.maximum(counts, 1)), 1.0)
            self.class_weight = weights.astype(np.float32)
            self.log.info(f"Class weights: {np.array2string(self.class_weight, precision=4, threshold=20)}")

    def _init_parameters(self) -> None:
        hp = self.hp
        models, k = self.ensemble.size, self.outputs
        columns = models * k
        if hp["init_method"] == "normal":
            weights = self.rng.normal(0.0, float(hp["init_sigma"]), size=(self.dim, columns))
        else:
            scale = float(hp["init_scale"])
            weights = self.rng.uniform(-scale, scale, size=(self.dim, columns))
        self.params = np.empty((self.dim + 1, columns), dtype=np.float32)
        self.params[:-1] = weights
        self.params[-1] = float(hp["init_bias"]) if hp["use_bias"] else 0.0
        self.best_params = self.params.copy()
        self.optimizer = Optimizer(
            self.optimizer_name,
            self.params,
            beta_1=self._auto("beta_1", AUTO_BETA_1),
            beta_2=self._auto("beta_2", AUTO_BETA_2),
            momentum=self._auto("momentum", AUTO_MOMENTUM),
        )
        self.wd_columns = np.repeat(self.ensemble.wd, k).astype(np.float32)
        self.l1_columns = np.repeat(self.ensemble.l1, k).astype(np.float32)
        self.bias_wd_columns = self.wd_columns * np.float32(self._auto("bias_wd_mult", AUTO_BIAS_WD_MULT))
        self.bias_lr_mult = (
            np.float32(self._auto("bias_lr_mult", AUTO_BIAS_LR_MULT)) if hp["use_bias"] else np.float32(0)
        )
        self.any_l1 = bool(np.any(self.l1_columns > 0))
        self.any_wd = bool(np.any(self.wd_columns > 0))
        self.any_bias_wd = bool(np.any(self.bias_wd_columns > 0))

    # -- maths -----------------------------------------------------------------------------------------
    def _targets(self, labels: np.ndarray) -> np.ndarray:
        if self.predictor in (BINARY, MULTICLASS):
            return labels
        return ((labels - np.float32(self.scaler.label_mean)) / np.float32(self.scaler.label_stdev)).astype(
            np.float32
        )

    def _class_weights(self, labels: np.ndarray) -> np.ndarray | None:
        """Training weights per row (rows × 1) or per row and model (rows × models); None when all 1.

        Only the training loss is weighted: validation losses stay comparable across models whose
        positive weights differ (``positive_example_weight_mult=auto``).
        """
        if self.positive_weight is not None and np.any(self.positive_weight != 1):
            return np.where(labels[:, None] == 1, self.positive_weight[None, :], np.float32(1))
        if self.class_weight is not None:
            return self.class_weight[labels.astype(np.intp)][:, None]
        return None

    def _loss(
        self, z: np.ndarray, labels: np.ndarray, want_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Element loss (rows × models) and gradient (rows × columns) for stacked outputs."""
        rows = z.shape[0]
        if self.predictor == MULTICLASS:
            loss, grad = self.train_loss.value_and_grad(z.reshape(rows, -1, self.outputs), labels, want_grad)
            return loss, None if grad is None else grad.reshape(rows, -1)
        return self.train_loss.value_and_grad(z, labels, want_grad)

    def _update(self, batch: Batch, update: int) -> tuple[np.ndarray, np.ndarray]:
        """One optimizer step for every model; returns the batch's weighted loss sums and weights."""
        features = batch.features
        rows = batch.rows
        targets = self._targets(batch.labels)
        z = self.stacked.outputs(features, self.params)
        loss, grad = self._loss(z, targets, True)
        assert grad is not None
        weights = self._class_weights(batch.labels)
        if weights is not None:
            loss = loss * weights
            if self.predictor == MULTICLASS:
                grad = (grad.reshape(rows, -1, self.outputs) * weights[:, :, None]).reshape(rows, -1)
            else:
                grad *= weights
            weight_sum = np.broadcast_to(weights.sum(axis=0, dtype=np.float64), (loss.shape[1],))
        else:
            weight_sum = np.full(loss.shape[1], float(rows))
        grad *= np.float32(1.0 / rows)
        params = self.params
        full = self.stacked.gradient(features, grad)
        weights_now = params[:-1]
        if self.any_wd:
            full[:-1] += self.wd_columns * weights_now
        if self.any_l1:
            full[:-1] += self.l1_columns * np.sign(weights_now)
        if self.any_bias_wd:
            full[-1] += self.bias_wd_columns * params[-1]
        rates = np.repeat(
            self.ensemble.learning_rates(update, bool(self.hp["use_lr_scheduler"])), self.outputs
        )
        self.optimizer.step(full, rates, rates * self.bias_lr_mult)
        return loss.sum(axis=0, dtype=np.float64), weight_sum

    # -- epochs -----------------------------------------------------------------------------------------
    def _train_epochs(self) -> tuple[int, float]:
        hp, log = self.hp, self.log
        epochs = int(hp["epochs"])
        models = self.ensemble.size
        tracker = Tracker(np.full(models, np.inf), np.full(models, np.inf), np.full(models, np.nan))
        update = 0
        total_update_seconds = 0.0
        objective = self.loss.objective_name
        for epoch in range(epochs):
            began = time.perf_counter()
            loss_sum = np.zeros(models)
            weight_sum = np.zeros(models)
            seen = 0
            for batch in self.train_data.epoch(epoch):
                batch_loss, batch_weight = self._update(batch, update)
                loss_sum += batch_loss
                weight_sum += batch_weight
                seen += batch.rows
                update += 1
            seconds = time.perf_counter() - began
            total_update_seconds += seconds
            train_loss = finite_or_nan(loss_sum / np.maximum(weight_sum, 1e-12) * self.loss_unit)
            validation_loss, sampled = self._evaluate_epoch()
            for model in range(models):
                values = {f"train_{objective}": float(train_loss[model])}
                if validation_loss is not None:
                    values[f"validation_{objective}"] = float(validation_loss[model])
                log.metrics(values, model=model, epoch=epoch)
            if np.all(np.isnan(train_loss)):
                raise ClientError(
                    f"training diverged in epoch {epoch}: every model's {objective} overflowed; "
                    "lower learning_rate (or let it default to auto) or normalise the data"
                )
            log.quality_metric("train", objective, smallest(train_loss), epoch=epoch)
            if validation_loss is not None:
                log.quality_metric("validation", objective, smallest(validation_loss), epoch=epoch)
            stop = self._early_stopping(epoch, tracker, train_loss, validation_loss, sampled)
            log.progress(100.0 * (epoch + 1) / epochs)
            log.throughput(seen / max(seconds, 1e-9))
            if stop:
                log.info("Early stop condition met. Stopping training.")
                self.tracker = tracker
                return epoch + 1, total_update_seconds
        self.tracker = tracker
        return epochs, total_update_seconds

    def _evaluate_epoch(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Validation loss per model, plus each model's binary criterion on a validation sample."""
        if self.validation is None:
            return None, None
        loss_sum = np.zeros(self.ensemble.size)
        rows = 0
        wants_criterion = self.predictor == BINARY and self.criterion != "loss_function"
        sample_rows = min(self.calibration_rows, CRITERION_SAMPLE)
        kept_scores: list[np.ndarray] = []
        kept_labels: list[np.ndarray] = []
        kept = 0
        for batch in self.validation.chunks():
            z = self.stacked.outputs(batch.features, self.params)
            loss, _ = self._loss(z, self._targets(batch.labels), False)
            loss_sum += loss.sum(axis=0, dtype=np.float64)
            rows += batch.rows
            if wants_criterion and kept < sample_rows:
                take = min(sample_rows - kept, batch.rows)
                kept_scores.append(self._binary_scores(z[:take]))
                kept_labels.append(batch.labels[:take])
                kept += take
        validation_loss = finite_or_nan(loss_sum / max(rows, 1) * self.loss_unit)
        if not wants_criterion:
            return validation_loss, None
        _, values = metrics.calibrate(
            np.concatenate(kept_scores),
            np.concatenate(kept_labels),
            self.criterion,
            beta=self.beta,
            target_recall=float(self.hp["target_recall"]),
            target_precision=float(self.hp["target_precision"]),
        )
        return validation_loss, values

    def _binary_scores(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z) if self.loss.name == "logistic" else z

    def _early_stopping(
        self,
        epoch: int,
        tracker: Tracker,
        train_loss: np.ndarray,
        validation_loss: np.ndarray | None,
        sampled: np.ndarray | None,
    ) -> bool:
        """Record each model's best epoch and decide whether to stop (§1.3 monitoring rules)."""
        hp, log = self.hp, self.log
        loss = train_loss if validation_loss is None else validation_loss
        if sampled is not None:
            keys, name, maximize = -sampled, f"sampled_{self.criterion}", True
        else:
            keys, name, maximize = loss, self.loss.objective_name, False
        improved = (keys < tracker.keys) | ((keys == tracker.keys) & (loss < tracker.tie_breaks))
        if improved.any():
            columns = np.repeat(improved, self.outputs)
            self.best_params[:, columns] = self.params[:, columns]
            tracker.keys = np.where(improved, keys, tracker.keys)
            tracker.tie_breaks = np.where(improved, loss, tracker.tie_breaks)
            tracker.train_loss_at_best = np.where(improved, train_loss, tracker.train_loss_at_best)
        epoch_best = smallest(keys)  # a diverged (NaN) model is out of the race
        value = -epoch_best if maximize else epoch_best
        log.info(
            f"#early_stopping_criteria_metric: host={log.host}, epoch={epoch}, criteria={name}, value={value!r}"
        )
        previous = tracker.best_overall
        relative = (previous - epoch_best) / max(abs(previous), 1e-12) if np.isfinite(previous) else np.inf
        if relative > float(hp["early_stopping_tolerance"]):
            tracker.best_overall = epoch_best
            tracker.stale_epochs = 0
            log.info(f"Epoch {epoch}: Loss improved. Updating best model")
            return False
        tracker.best_overall = min(previous, epoch_best)
        tracker.stale_epochs += 1
        log.info(f"Epoch {epoch}: Loss has not improved for {tracker.stale_epochs} epochs.")
        return tracker.stale_epochs >= int(hp["early_stopping_patience"])

    # -- selection, calibration and final scores ------------------------------------------------------------
    def _finish(self) -> None:
        log = self.log
        best = self._select_model()
        model = self._model_for(best)
        model.threshold = self._threshold(model)
        train_at_best = float(self.tracker.train_loss_at_best[best])
        if np.isfinite(train_at_best):
            log.quality_metric("train", self.loss.objective_name, train_at_best)
        if self.validation is not None:
            self._report("validation", model, self.validation)
        positive = None
        if self.positive_weight is not None and self.hp["positive_example_weight_mult"] == AUTO:
            positive = float(self.positive_weight[best])
        found = self.ensemble.describe(best, positive)
        model.hyperparameters = found
        log.info(f"Best model found for hyperparameters: {json.dumps(found)}")
        path = model.save(self.ctx.model_dir)
        log.info(f'Saved model to "{path}"')
        if self.test is not None:
            self._report("test", model, self.test)
        else:
            log.info("Test data is not provided.")

    def _select_model(self) -> int:
        """The best model: best recorded criterion or loss; without validation, binary models are
        compared on a training sample (the docs' "sample of training data")."""
        tracker = self.tracker
        if self.ensemble.size == 1:
            return 0
        if self.validation is None and self.predictor == BINARY and self.criterion != "loss_function":
            sample = self._training_calibration_sample()
            z = self.stacked.outputs(sample.features, self.best_params)
            _, values = metrics.calibrate(
                self._binary_scores(z),
                sample.labels,
                self.criterion,
                beta=self.beta,
                target_recall=float(self.hp["target_recall"]),
                target_precision=float(self.hp["target_precision"]),
            )
            return int(np.lexsort((tracker.tie_breaks, -values))[0])
        return int(np.lexsort((tracker.tie_breaks, tracker.keys))[0])

    def _training_calibration_sample(self) -> Batch:
        data = self.train_data.in_memory
        if data is None:
            return self.train_data.sample
        if data.rows <= self.calibration_rows:
            return data
        return data.take(np.sort(self.rng.choice(data.rows, self.calibration_rows, replace=False)))

    def _model_for(self, best: int) -> LinearModel:
        columns = slice(best * self.outputs, (best + 1) * self.outputs)
        chosen = self.best_params[:, columns]
        return LinearModel(
            predictor_type=self.predictor,
            loss=self.loss.name,
            feature_dim=self.dim,
            weight=chosen[:-1].copy(),
            bias=chosen[-1].copy(),
            feature_mean=self.scaler.mean,
            feature_stdev=self.scaler.stdev,
            label_mean=self.scaler.label_mean,
            label_stdev=self.scaler.label_stdev,
            threshold=0.5 if self.loss.name == "logistic" else 0.0,
            num_classes=self.outputs if self.predictor == MULTICLASS else None,
        )

    def _threshold(self, model: LinearModel) -> float:
        """The binary decision threshold that optimises the selection criterion (§1.5 step 4)."""
        if self.predictor != BINARY or self.criterion == "loss_function":
            return model.threshold
        if self.validation is not None:
            scores: list[np.ndarray] = []
            labels: list[np.ndarray] = []
            kept = 0
            for batch in self.validation.chunks():
                take = min(self.calibration_rows - kept, batch.rows)
                scores.append(model.scores(batch.features[:take]))
                labels.append(batch.labels[:take])
                kept += take
                if kept >= self.calibration_rows:
                    break
            sample_scores, sample_labels = np.concatenate(scores), np.concatenate(labels)
        else:
            sample = self._training_calibration_sample()
            sample_scores, sample_labels = model.scores(sample.features), sample.labels
        thresholds, _ = metrics.calibrate(
            sample_scores[:, None],
            sample_labels,
            self.criterion,
            beta=self.beta,
            target_recall=float(self.hp["target_recall"]),
            target_precision=float(self.hp["target_precision"]),
        )
        return float(thresholds[0])

    def _report(self, split: str, model: LinearModel, data: EvalData) -> None:
        """Final metrics of the chosen model on a channel: score lines, then quality lines."""
        outputs: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for batch in data.chunks():
            outputs.append(model.outputs(batch.features))
            labels.append(batch.labels)
        z = np.concatenate(outputs)
        truth = np.concatenate(labels)
        if self.predictor == MULTICLASS:
            loss, _ = self.loss.value_and_grad(z[:, None, :], truth, False)
        else:
            loss, _ = self.loss.value_and_grad(z[:, :1], truth, False)
        objective = (self.loss.objective_name, float(loss.mean(dtype=np.float64)))
        report: metrics.Report
        if self.predictor == MULTICLASS:
            report = metrics.multiclass_report(
                objective, softmax(z), truth, int(self.hp["accuracy_top_k"]), self.beta
            )
        elif self.predictor == BINARY:
            scores = self._binary_scores(z[:, 0])
            report = metrics.binary_report(objective, scores, truth, model.threshold, self.beta)
        else:
            report = metrics.regression_report(objective, z[:, 0], truth)
        report = [entry for entry in report if np.isfinite(entry[1])]
        for name, value, _ in report:
            self.log.score(split, name, value)
        for name, value, maximize in report:
            self.log.quality_metric(split, name, value, maximize=maximize)
