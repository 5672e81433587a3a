"""Adam with MXNet's update rule, including its lazy row-sparse update.

Why it exists: Factorization Machines and IP Insights both train with MXNet's Adam (the
containers' optimizer arguments surface as their hyperparameters), so they share one
implementation. Linear Learner's optimizers act on a stacked matrix of parallel models with
per-column learning rates and stay in that package.

SageMaker's first-party algorithms train with MXNet optimizers, whose arguments (``rescale_grad``,
``clip_gradient``, ``wd``, ``epsilon``) surface as hyperparameters. MXNet's step is: scale the
gradient by ``rescale_grad``, clip it to ``[-clip, clip]``, add ``wd * weight``, update the moments
and apply the bias-corrected step ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.
With sparse inputs MXNet updates only the rows a batch touched (``lazy_update``), moments and
weight decay included; ``rows`` selects them here, which is also what makes sparse training fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BETA1 = 0.9
BETA2 = 0.999
DEFAULT_EPS = 1e-8


@dataclass
class AdamSlot:
    """One parameter array with its own learning rate, weight decay and Adam moments."""

    weight: np.ndarray
    lr: float
    wd: float
    mean: np.ndarray = field(init=False)
    var: np.ndarray = field(init=False)
    steps: int = 0

    def __post_init__(self) -> None:
        self.mean = np.zeros_like(self.weight)
        self.var = np.zeros_like(self.weight)


@dataclass
class Adam:
    """Applies MXNet's Adam step to ``AdamSlot``s; ``clip`` of None means no clipping."""

    eps: float = DEFAULT_EPS
    clip: float | None = None

    def step(self, slot: AdamSlot, grad: np.ndarray, rescale: float, rows: np.ndarray | None = None) -> None:
        """Update ``slot.weight`` (only ``rows`` of it when given) from the summed gradient."""
        slot.steps += 1
        if slot.lr == 0.0:
            return
        g = np.multiply(grad, rescale, dtype=slot.weight.dtype)
        if self.clip is not None:
            np.clip(g, -self.clip, self.clip, out=g)
        if rows is None:
            weight, mean, var = slot.weight, slot.mean, slot.var
        else:
            weight, mean, var = slot.weight[rows], slot.mean[rows], slot.var[rows]
        if slot.wd:
            g += slot.wd * weight
        mean *= BETA1
        mean += (1.0 - BETA1) * g
        g *= g
        g *= 1.0 - BETA2
        var *= BETA2
        var += g
        # Python floats keep the arithmetic in the weights' float32.
        lr_t = float(slot.lr * np.sqrt(1.0 - BETA2**slot.steps) / (1.0 - BETA1**slot.steps))
        step = np.sqrt(var)
        step += self.eps
        np.divide(mean, step, out=step)
        step *= lr_t
        weight -= step
        if rows is not None:
            slot.mean[rows] = mean
            slot.var[rows] = var
            slot.weight[rows] = weight
