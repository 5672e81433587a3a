"""SGD (with momentum), Adam and RMSProp over a stacked parameter matrix.

All parallel models live in one ``(features + 1, columns)`` float32 matrix (the last row is the
bias), so one update moves every model. Learning rates are per column (each model has its own
schedule); the bias row gets ``bias_lr_mult`` times that. Updates run in place.
"""

from __future__ import annotations

import numpy as np

_EPS = np.float32(1e-8)


class Optimizer:
    """Updates ``params`` in place from a gradient of the same shape."""

    def __init__(
        self,
        name: str,
        params: np.ndarray,
        *,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        momentum: float = 0.0,
        rms_decay: float = 0.9,
    ) -> None:
        self.name = name
        self.params = params
        self.beta_1 = np.float32(beta_1)
        self.beta_2 = np.float32(beta_2)
        self.momentum = np.float32(momentum)
        self.rms_decay = np.float32(rms_decay)
        self.steps = 0
        self._first = np.zeros_like(params) if name == "adam" or (name == "sgd" and momentum > 0) else None
        self._second = np.zeros_like(params) if name in ("adam", "rmsprop") else None

    def step(self, grad: np.ndarray, lr: np.ndarray, bias_lr: np.ndarray) -> None:
        """One update; ``lr``/``bias_lr`` are per-column rates for the weights and the bias row."""
        self.steps += 1
        if self.name == "adam":
            direction = self._adam(grad)
        elif self.name == "rmsprop":
            direction = self._rmsprop(grad)
        else:
            direction = self._sgd(grad)
        direction[:-1] *= lr
        direction[-1] *= bias_lr
        self.params -= direction

    def _adam(self, grad: np.ndarray) -> np.ndarray:
        first, second = self._first, self._second
        assert first is not None and second is not None
        first *= self.beta_1
        first += (1 - self.beta_1) * grad
        second *= self.beta_2
        np.square(grad, out=grad)
        grad *= 1 - self.beta_2
        second += grad
        correction = np.float32(
            np.sqrt(1 - float(self.beta_2) ** self.steps) / (1 - float(self.beta_1) ** self.steps)
        )
        direction = np.sqrt(second)
        direction += _EPS
        np.divide(first, direction, out=direction)
        direction *= correction
        return direction

    def _rmsprop(self, grad: np.ndarray) -> np.ndarray:
        second = self._second
        assert second is not None
        second *= self.rms_decay
        second += (1 - self.rms_decay) * np.square(grad)
        direction = np.sqrt(second)
        direction += _EPS
        np.divide(grad, direction, out=direction)
        return direction

    def _sgd(self, grad: np.ndarray) -> np.ndarray:
        if self._first is None:
            return grad
        # heavy-ball momentum on the raw gradient; the learning rate scales the accumulated velocity
        self._first *= self.momentum
        self._first += grad
        return self._first.copy()
