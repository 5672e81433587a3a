"""A small exact Gaussian process for Bayesian optimisation, in numpy and scipy only.

Model: zero-mean GP (the targets are standardised by the caller) with a Matern 5/2 ARD kernel
``k(x, x') = s2 * (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``, ``r^2 = sum_d (x_d - x'_d)^2 / l_d^2``,
plus Gaussian observation noise ``n2``. The hyperparameters ``(log l_1..l_D, log s2, log n2)`` are
fitted by maximising the log marginal likelihood plus weak log-normal priors (a MAP estimate: with
a handful of points the plain maximum likelihood often collapses to tiny lengthscales or to
"everything is noise") with L-BFGS-B from a few starts, using the analytic gradient.

Acquisition: log Expected Improvement for *minimisation*, computed stably for very negative ``z``
(so L-BFGS still has a gradient far from the incumbent), with its gradient with respect to the
inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack
from scipy.optimize import minimize
from scipy.special import erfcx, ndtr

from forgeml.tuning.strategies._common import single_threaded_blas

SQRT5 = math.sqrt(5.0)
LOG_2PI = math.log(2 * math.pi)
JITTER = 1e-8

# Bounds (log space) and log-normal priors (mean, sd of the log) of the hyperparameters, for
# inputs in the unit cube and standardised targets.
LENGTHSCALE_BOUNDS = (math.log(0.01), math.log(20.0))
SIGNAL_BOUNDS = (math.log(0.05), math.log(20.0))
NOISE_BOUNDS = (math.log(1e-6), math.log(1.0))
LENGTHSCALE_PRIOR = (math.log(0.5), 1.0)
SIGNAL_PRIOR = (0.0, 1.0)
NOISE_PRIOR = (math.log(1e-3), 2.0)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared distances of rows (inputs already divided by the lengthscales)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _matern(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance Matern 5/2 at distances r, and g(r) = (5/3)(1 + sqrt5 r) exp(-sqrt5 r), the
    factor shared by its derivatives (dk/dr = -r g(r))."""
    e = np.exp(-SQRT5 * r)
    k = (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r) * e
    g = (5.0 / 3.0) * (1.0 + SQRT5 * r) * e
    return k, g


@dataclass
class Hyperparameters:
    lengthscales: np.ndarray
    signal: float  # s2
    noise: float  # n2

    def to_vector(self) -> np.ndarray:
        return np.concatenate([np.log(self.lengthscales), [math.log(self.signal), math.log(self.noise)]])

    @classmethod
    def from_vector(cls, theta: np.ndarray) -> Hyperparameters:
        return cls(np.exp(theta[:-2]), float(np.exp(theta[-2])), float(np.exp(theta[-1])))


def _bounds(dim: int) -> list[tuple[float, float]]:
    return [LENGTHSCALE_BOUNDS] * dim + [SIGNAL_BOUNDS, NOISE_BOUNDS]


def _prior_means(dim: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([LENGTHSCALE_PRIOR[0]] * dim + [SIGNAL_PRIOR[0], NOISE_PRIOR[0]])
    sd = np.array([LENGTHSCALE_PRIOR[1]] * dim + [SIGNAL_PRIOR[1], NOISE_PRIOR[1]])
    return mean, sd


def negative_log_posterior(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """-(log marginal likelihood + log prior) and its gradient with respect to ``theta``."""
    n, dim = x.shape
    ls = np.exp(theta[:dim])
    s2, n2 = math.exp(theta[dim]), math.exp(theta[dim + 1])
    xs = x / ls
    r = np.sqrt(_sq_dist(xs, xs))
    kr, g = _matern(r)
    kf = s2 * kr
    k = kf + (n2 + JITTER) * np.eye(n)
    # LAPACK directly: scipy's wrappers' checks cost more than the factorisation at this size.
    chol, info = lapack.dpotrf(k, lower=1, clean=1)
    if info != 0:
        return 1e10, np.zeros_like(theta)
    alpha, _ = lapack.dpotrs(chol, y, lower=1)
    kinv, _ = lapack.dpotri(chol, lower=1)  # lower triangle of K^-1
    kinv = np.tril(kinv) + np.tril(kinv, -1).T
    nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(chol)).sum()) + 0.5 * n * LOG_2PI
    w = kinv - np.outer(alpha, alpha)  # d nll / d K = w / 2
    m = w * (s2 * g)
    rowsum = m.sum(1)
    grad_ls = (rowsum @ (x * x) - ((m @ x) * x).sum(0)) / (ls * ls)
    grad = np.empty_like(theta)
    grad[:dim] = grad_ls
    grad[dim] = 0.5 * float((w * kf).sum())
    grad[dim + 1] = 0.5 * n2 * float(np.trace(w))
    mean, sd = _prior_means(dim)
    z = (theta - mean) / sd
    nll += 0.5 * float(z @ z)
    grad += z / sd
    return nll, grad


def fit_hyperparameters(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, restarts: int = 2,
                        initial: Hyperparameters | None = None, maxiter: int = 50) -> Hyperparameters:
    """MAP hyperparameters by L-BFGS-B from the prior mode, from ``initial`` (a previous fit) when
    given, and from ``restarts`` random starts drawn from the prior."""
    dim = x.shape[1]
    bounds = _bounds(dim)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    mean, sd = _prior_means(dim)
    starts = [mean.copy()]
    if initial is not None:
        starts.append(np.clip(initial.to_vector(), lo, hi))
    for _ in range(restarts):
        starts.append(np.clip(mean + sd * rng.standard_normal(dim + 2) * 0.7, lo, hi))
    best_theta, best_value = mean, math.inf
    with single_threaded_blas():
        for start in starts:
            result = minimize(negative_log_posterior, start, args=(x, y), jac=True, method="L-BFGS-B",
                              bounds=bounds, options={"maxiter": maxiter})
            if np.isfinite(result.fun) and result.fun < best_value:
                best_theta, best_value = np.asarray(result.x), float(result.fun)
    return Hyperparameters.from_vector(best_theta)


class GaussianProcess:
    """The posterior of the GP given data ``(x, y)`` and fixed hyperparameters."""

    def __init__(self, x: np.ndarray, y: np.ndarray, hyper: Hyperparameters) -> None:
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.hyper = hyper
        self._xs = self.x / hyper.lengthscales
        n = len(self.x)
        r = np.sqrt(_sq_dist(self._xs, self._xs))
        k = hyper.signal * _matern(r)[0]
        jitter = hyper.noise + JITTER
        while True:
            chol, info = lapack.dpotrf(k + jitter * np.eye(n), lower=1, clean=1)
            if info == 0:
                break
            jitter *= 10  # numerically indefinite (near-duplicate points and tiny noise)
            if jitter > 1.0:
                raise np.linalg.LinAlgError("the GP kernel matrix is not positive definite")
        self._alpha = lapack.dpotrs(chol, self.y, lower=1)[0]
        kinv = lapack.dpotri(chol, lower=1)[0]
        self._kinv = np.tril(kinv) + np.tril(kinv, -1).T

    def correlation(self, xq: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """The kernel's correlation (unit signal variance) between the rows of ``xq`` and ``xs``."""
        ls = self.hyper.lengthscales
        return _matern(np.sqrt(_sq_dist(xq / ls, xs / ls)))[0]

    def with_data(self, x: np.ndarray, y: np.ndarray) -> GaussianProcess:
        return GaussianProcess(x, y, self.hyper)

    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function at the rows of ``xq``."""
        kq = self.hyper.signal * _matern(np.sqrt(_sq_dist(xq / self.hyper.lengthscales, self._xs)))[0]
        mean = kq @ self._alpha
        var = np.maximum(self.hyper.signal - ((kq @ self._kinv) * kq).sum(1), 1e-12)
        return mean, var

    def predict_with_gradient(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients (rows of shape (m, D)) at the rows of ``xq``."""
        ls2 = self.hyper.lengthscales ** 2
        r = np.sqrt(_sq_dist(xq / self.hyper.lengthscales, self._xs))
        kr, g = _matern(r)
        kq = self.hyper.signal * kr
        gq = self.hyper.signal * g  # dk/dx_d = -gq * (x_d - X_d) / l_d^2
        mean = kq @ self._alpha
        a = kq @ self._kinv  # (m, n) = K^-1 k for every query row
        var = np.maximum(self.hyper.signal - (kq * a).sum(1), 1e-12)
        ga = gq * self._alpha[None, :]
        dmean = -(xq * ga.sum(1)[:, None] - ga @ self.x) / ls2
        gb = gq * a
        dvar = 2.0 * (xq * gb.sum(1)[:, None] - gb @ self.x) / ls2
        return mean, var, dmean, dvar


def log_h(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log h(z) with h(z) = z Phi(z) + phi(z) (EI = sigma h(z)), and the ratios Phi(z)/h(z),
    phi(z)/h(z) needed by its gradient, all stable for very negative z."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    cdf_ratio = np.empty_like(z)
    pdf_ratio = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    pdf = np.exp(-0.5 * zu * zu - 0.5 * LOG_2PI)
    h = zu * ndtr(zu) + pdf
    out[upper] = np.log(h)
    cdf_ratio[upper] = ndtr(zu) / h
    pdf_ratio[upper] = pdf / h
    t = -z[~upper]
    mills = erfcx(t / math.sqrt(2.0)) * math.sqrt(math.pi / 2.0)  # Phi(-t) / phi(t)
    one_minus = np.where(t > 100.0, 1.0 / (t * t), 1.0 - t * mills)  # h = phi(t) (1 - t R(t))
    one_minus = np.maximum(one_minus, 1e-300)
    out[~upper] = -0.5 * t * t - 0.5 * LOG_2PI + np.log(one_minus)
    cdf_ratio[~upper] = mills / one_minus
    pdf_ratio[~upper] = 1.0 / one_minus
    return out, cdf_ratio, pdf_ratio


def log_expected_improvement(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    sigma = np.sqrt(var)
    return np.log(sigma) + log_h((best - mean) / sigma)[0]


def log_expected_improvement_with_gradient(gp: GaussianProcess, xq: np.ndarray,
                                           best: float) -> tuple[np.ndarray, np.ndarray]:
    mean, var, dmean, dvar = gp.predict_with_gradient(xq)
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    value, cdf_ratio, pdf_ratio = log_h(z)
    value = value + np.log(sigma)
    dsigma = dvar / (2.0 * sigma[:, None])
    grad = (-cdf_ratio[:, None] * dmean + pdf_ratio[:, None] * dsigma) / sigma[:, None]
    return value, grad


__all__ = [
    "GaussianProcess",
    "Hyperparameters",
    "fit_hyperparameters",
    "log_expected_improvement",
    "log_expected_improvement_with_gradient",
    "negative_log_posterior",
]
