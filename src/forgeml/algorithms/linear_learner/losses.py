"""The loss functions of §1.2, vectorised over every parallel model at once.

A loss sees raw outputs ``z`` for all models (``(rows, models)``, or ``(rows, models, classes)``
for softmax) and the labels, and returns the per-element loss and its gradient with respect to
``z``. Training happens on normalised labels for regression; ``for_label_scale`` rewrites the
scale-dependent parameters (epsilon, Huber delta) so the normalised problem is the user's problem
divided by ``label_scale ** scale_power``, and ``scale_power`` turns reported values back into the
user's label units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Names printed in ``#quality_metric`` lines (the ``\S+_objective`` part of SageMaker's regexes).
# logistic, softmax and squared loss are observed; the rest follow the same ``<loss>_objective``
# pattern (UNVERIFIED, §1.2).
OBJECTIVE_NAMES = {
    "logistic": "binary_classification_cross_entropy_objective",
    "softmax_loss": "multiclass_cross_entropy_objective",
    "squared_loss": "mse_objective",
    "hinge_loss": "hinge_loss_objective",
    "absolute_loss": "absolute_loss_objective",
    "eps_insensitive_squared_loss": "eps_insensitive_squared_loss_objective",
    "eps_insensitive_absolute_loss": "eps_insensitive_absolute_loss_objective",
    "quantile_loss": "quantile_loss_objective",
    "huber_loss": "huber_loss_objective",
}

_SQUARED = ("squared_loss", "eps_insensitive_squared_loss", "huber_loss")


@dataclass(frozen=True)
class Loss:
    """One loss with its parameters; ``name`` is SageMaker's ``loss`` value."""

    name: str
    margin: float = 1.0
    quantile: float = 0.5
    epsilon: float = 0.01
    huber_delta: float = 1.0

    @property
    def objective_name(self) -> str:
        return OBJECTIVE_NAMES[self.name]

    @property
    def scale_power(self) -> int:
        """Loss value in label units = normalised loss × label_scale ** scale_power."""
        return 2 if self.name in _SQUARED else 1

    @property
    def is_probabilistic(self) -> bool:
        """Scores are probabilities (logistic, softmax) rather than margins or values."""
        return self.name in ("logistic", "softmax_loss")

    def for_label_scale(self, scale: float) -> Loss:
        """The same loss for labels divided by ``scale``."""
        return replace(self, epsilon=self.epsilon / scale, huber_delta=self.huber_delta / scale)

    def value_and_grad(
        self, z: np.ndarray, y: np.ndarray, want_grad: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Element-wise loss (rows × models) and d loss / d z (the shape of ``z``) or None."""
        if self.name == "softmax_loss":
            return _softmax(z, y, want_grad)
        target = y[:, None]
        if self.name == "logistic":
            return _logistic(z, target), (_sigmoid(z) - target if want_grad else None)
        if self.name == "hinge_loss":
            sign = 2 * target - 1
            slack = self.margin - sign * z
            active = slack > 0
            return np.where(active, slack, 0), (np.where(active, -sign, 0) if want_grad else None)
        residual = z - target
        return self._regression(residual, want_grad)

    def _regression(self, r: np.ndarray, want_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        name = self.name
        if name == "squared_loss":
            return r * r, (2 * r if want_grad else None)
        if name == "absolute_loss":
            return np.abs(r), (np.sign(r) if want_grad else None)
        if name in ("eps_insensitive_squared_loss", "eps_insensitive_absolute_loss"):
            excess = np.maximum(np.abs(r) - np.float32(self.epsilon), 0)
            if name == "eps_insensitive_absolute_loss":
                return excess, (np.sign(r) * (excess > 0) if want_grad else None)
            return excess * excess, (2 * excess * np.sign(r) if want_grad else None)
        if name == "quantile_loss":
            q = np.float32(self.quantile)
            # r = prediction - label; under-prediction (r < 0) costs q per unit, over-prediction 1 - q
            loss = np.where(r < 0, -q * r, (1 - q) * r)
            return loss, (np.where(r < 0, -q, np.where(r > 0, 1 - q, 0)) if want_grad else None)
        if name == "huber_loss":
            delta = np.float32(self.huber_delta)
            size = np.abs(r)
            loss = np.where(size <= delta, 0.5 * r * r, delta * (size - 0.5 * delta))
            return loss, (np.clip(r, -delta, delta) if want_grad else None)
        raise ValueError(f"unknown loss {name}")


def _logistic(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z)) - y z``, written as ``max(z, 0) + log1p(exp(-|z|)) - y z``: stable, and
    several times faster than ``np.logaddexp`` in float32."""
    loss = np.abs(z)
    np.negative(loss, out=loss)
    np.exp(loss, out=loss)
    np.log1p(loss, out=loss)
    loss += np.maximum(z, 0)
    loss -= target * z
    return loss


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large |z|
    return np.float32(0.5) * (np.tanh(np.float32(0.5) * z) + np.float32(1))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Probability of class 1 from a logistic output."""
    return _sigmoid(np.asarray(z, dtype=np.float32))


def _reduce_last(z: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``ufunc.reduce`` over the last axis; for a few classes an element-wise loop over the class
    slices is several times faster than numpy's strided reduction along a short axis."""
    if z.shape[-1] > 16:
        return ufunc.reduce(z, axis=-1)
    out = z[..., 0].copy()
    for column in range(1, z.shape[-1]):
        ufunc(out, z[..., column], out=out)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Class probabilities along the last axis."""
    shifted = z - _reduce_last(z, np.maximum)[..., None]
    np.exp(shifted, out=shifted)
    shifted /= _reduce_last(shifted, np.add)[..., None]
    return shifted


def _softmax(z: np.ndarray, y: np.ndarray, want_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Cross-entropy of softmax outputs; ``z`` is rows × models × classes, ``y`` class indices."""
    rows = np.arange(z.shape[0])
    labels = y.astype(np.intp)
    shifted = z - _reduce_last(z, np.maximum)[..., None]
    exp = np.exp(shifted)
    total = _reduce_last(exp, np.add)
    loss = np.log(total) - shifted[rows, :, labels]
    if not want_grad:
        return loss, None
    exp /= total[..., None]
    exp[rows, :, labels] -= 1
    return loss, exp
