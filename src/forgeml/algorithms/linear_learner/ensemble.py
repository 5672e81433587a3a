"""The settings of the ``num_models`` models trained side by side.

SageMaker trains one model with the given settings and the rest with "close" ones, then keeps the
best (§1.5). Its observed "Best model found" lines show which knobs differ between models:
learning_rate, wd, l1 and the three lr_scheduler values. Observed jobs also suggest that values
the user set are kept (seed 000 set learning_rate, l1 and wd; the best model carried exactly
those, with scheduler values that were left on ``auto``). So here a knob the user set is the same
for every model, and a knob left on ``auto`` is spread over a grid of values (model 0 takes the
first, central value of each grid). The grids are our choice (UNVERIFIED against the container);
the central values follow the older Spark docstrings (lr_scheduler_step 100, factor 0.99,
minimum 1e-5, wd 0, l1 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forgeml.algorithms.hyperparameters import AUTO

LEARNING_RATES = (0.1, 0.01, 0.03, 0.3, 0.003, 1.0, 0.001)
SGD_LEARNING_RATES = (0.1, 0.3, 0.03, 1.0, 0.01, 0.003)
WEIGHT_DECAYS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
L1_PENALTIES = (0.0, 1e-6, 1e-5, 1e-4, 1e-3)
SCHEDULER_STEPS = (100, 10, 1000)
SCHEDULER_FACTORS = (0.99, 0.98, 0.999, 0.95)
SCHEDULER_MINIMA = (1e-5,)
# positive_example_weight_mult=auto: exponents of the balancing ratio (0 = weight 1, 1 = balanced)
POSITIVE_WEIGHT_EXPONENTS = (0.0, 1.0, 0.5, 0.25, 0.75)

DEFAULT_MODELS = 32
# Parameter budget for num_models=auto: stacked weights (plus optimizer state) stay in memory.
PARAMETER_BUDGET = 1 << 24


@dataclass
class Ensemble:
    """Per-model settings, one float64 array entry per model (as the user wrote them)."""

    optimizer: str
    learning_rate: np.ndarray
    wd: np.ndarray
    l1: np.ndarray
    scheduler_step: np.ndarray
    scheduler_factor: np.ndarray
    scheduler_minimum: np.ndarray
    positive_weight_exponent: np.ndarray | None

    @property
    def size(self) -> int:
        return int(self.learning_rate.shape[0])

    def describe(self, model: int, positive_weight: float | None = None) -> dict[str, Any]:
        """The dictionary printed in ``Best model found for hyperparameters: {...}``."""
        found: dict[str, Any] = {
            "optimizer": self.optimizer,
            "learning_rate": float(self.learning_rate[model]),
            "wd": float(self.wd[model]),
            "l1": float(self.l1[model]),
            "lr_scheduler_step": int(self.scheduler_step[model]),
            "lr_scheduler_factor": float(self.scheduler_factor[model]),
            "lr_scheduler_minimum_lr": float(self.scheduler_minimum[model]),
        }
        if positive_weight is not None:
            found["positive_example_weight_mult"] = positive_weight
        return found

    def learning_rates(self, update: int, use_scheduler: bool) -> np.ndarray:
        """Each model's learning rate after ``update`` updates: stepwise decay down to the floor."""
        if not use_scheduler:
            return self.learning_rate.astype(np.float32)
        decayed = self.learning_rate * self.scheduler_factor ** (update // self.scheduler_step)
        floor = np.minimum(self.scheduler_minimum, self.learning_rate)
        return np.maximum(decayed, floor).astype(np.float32)


def build_ensemble(
    hp: dict[str, Any], optimizer: str, outputs: int, feature_dim: int, tuning: bool
) -> Ensemble:
    """Settings for every model: user values everywhere, ``auto`` knobs spread over their grids.

    Under automatic model tuning (``_tuning_objective_metric`` set) SageMaker forces a single model
    (§1.5); so does ``num_models=1``.
    """
    requested = hp["num_models"]
    if tuning:
        count = 1
    elif requested == AUTO:
        count = max(1, min(DEFAULT_MODELS, PARAMETER_BUDGET // max(1, (feature_dim + 1) * outputs)))
    else:
        count = int(requested)
    rates = SGD_LEARNING_RATES if optimizer == "sgd" else LEARNING_RATES
    grids: dict[str, tuple[Any, tuple[float, ...]]] = {
        "learning_rate": (hp["learning_rate"], rates),
        "wd": (hp["wd"], WEIGHT_DECAYS),
        "l1": (hp["l1"], L1_PENALTIES),
        "lr_scheduler_step": (hp["lr_scheduler_step"], SCHEDULER_STEPS),
        "lr_scheduler_factor": (hp["lr_scheduler_factor"], SCHEDULER_FACTORS),
        "lr_scheduler_minimum_lr": (hp["lr_scheduler_minimum_lr"], SCHEDULER_MINIMA),
    }
    searched_weight = (
        hp["predictor_type"] == "binary_classifier" and hp["positive_example_weight_mult"] == AUTO
    )
    if searched_weight:
        grids["positive_example_weight_mult"] = (AUTO, POSITIVE_WEIGHT_EXPONENTS)
    rng = np.random.default_rng(20171129)
    combos = [tuple(grid[0] if value == AUTO else value for value, grid in grids.values())]
    seen = set(combos)
    distinct = int(np.prod([len(grid) if value == AUTO else 1 for value, grid in grids.values()]))
    # learning rate walks its grid in order (it matters most); the other auto knobs are drawn at
    # random; repeats are skipped while unseen combinations remain.
    index = 1
    while len(combos) < count:
        if requested == AUTO and len(seen) >= distinct:
            break  # every distinct combination is in: more copies would only repeat work
        combo = []
        for position, (value, grid) in enumerate(grids.values()):
            if value != AUTO:
                combo.append(value)
            elif position == 0:
                combo.append(grid[index % len(grid)])
            else:
                combo.append(grid[int(rng.integers(len(grid)))])
        index += 1
        key = tuple(combo)
        if key in seen and len(seen) < distinct:
            continue
        seen.add(key)
        combos.append(key)
    table = np.array(combos, dtype=np.float64)
    return Ensemble(
        optimizer=optimizer,
        learning_rate=table[:, 0],
        wd=table[:, 1],
        l1=table[:, 2],
        scheduler_step=table[:, 3].astype(np.int64),
        scheduler_factor=table[:, 4],
        scheduler_minimum=table[:, 5],
        positive_weight_exponent=table[:, 6] if searched_weight else None,
    )
