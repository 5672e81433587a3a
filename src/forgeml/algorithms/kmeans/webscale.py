"""SageMaker's web-scale K-Means, in numpy.

Two stages (reference §5.2): a streaming mini-batch pass keeps ``k × extra_center_factor`` centres,
each moved towards the mean of the points assigned to it in proportion to how many new points it
got (``p = n_new / (n_old + n_new)``, with optional exponential forgetting); then a weighted
Lloyd's step on those centres (weights = points absorbed) reduces them to ``k``, repeated for
``local_lloyd_num_trials`` seeds, keeping the lowest mean squared distance. One pass over the data
per epoch, so it streams from Pipe mode with memory bounded by one mini-batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.common.linalg import squared_norms

Features: TypeAlias = np.ndarray | sp.csr_matrix


def nearest_centers(features: Features, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's closest centre and the squared Euclidean distance to it.

    Uses ``|x|² - 2x·c + |c|²`` so the heavy part is one matrix product in the features' precision.
    """
    cross = np.asarray(features @ centers.T)
    cross *= -2.0
    cross += squared_norms(centers).astype(cross.dtype)
    labels = np.argmin(cross, axis=1)
    best = np.take_along_axis(cross, labels[:, None], axis=1)[:, 0].astype(np.float64)
    best += squared_norms(features)
    np.maximum(best, 0.0, out=best)
    return labels, best


def _group_sums(
    labels: np.ndarray, n_groups: int, features: Features, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-group (weighted) sums of rows: sorted segment sums for dense rows, a one-hot product for CSR."""
    n = labels.shape[0]
    if sp.issparse(features):
        values = np.ones(n, dtype=np.float64) if weights is None else weights
        onehot = sp.csr_matrix((values, (labels, np.arange(n))), shape=(n_groups, n))
        return np.asarray((onehot @ features).toarray(), dtype=np.float64)
    order = np.argsort(labels, kind="stable")
    grouped = np.asarray(features, dtype=np.float64)[order]
    if weights is not None:
        grouped *= weights[order, None]
    ordered_labels = labels[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered_labels[1:] != ordered_labels[:-1]]))
    sums = np.zeros((n_groups, features.shape[1]))
    sums[ordered_labels[starts]] = np.add.reduceat(grouped, starts, axis=0)
    return sums


def _dense_rows(features: Features, rows: np.ndarray) -> np.ndarray:
    picked = features[rows]
    return np.asarray(picked.toarray() if sp.issparse(picked) else picked, dtype=np.float64)


def kmeanspp_indices(
    features: Features, n_centers: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """k-means++ seeding (optionally weighted): each new seed drawn with probability ∝ w·D².

    When every remaining point coincides with a chosen seed (D² = 0) the next seed is drawn
    uniformly from the points not chosen yet, so duplicates never stall the seeding.
    """
    n = features.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    row_sq = squared_norms(features)
    closest = np.full(n, np.inf)
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for step in range(n_centers):
        mass = w.copy() if step == 0 else w * closest
        mass[taken] = 0.0
        total = mass.sum()
        if total > 0 and np.isfinite(total):
            index = int(np.searchsorted(np.cumsum(mass), rng.random() * total, side="right"))
            index = min(index, n - 1)
            while taken[index]:  # only reachable through floating-point edge cases at the boundary
                index = (index + 1) % n
        else:
            index = int(rng.choice(np.flatnonzero(~taken)))
        chosen.append(index)
        taken[index] = True
        center = _dense_rows(features, np.array([index]))
        dist = row_sq - 2.0 * np.asarray(features @ center[0]).ravel() + float(center[0] @ center[0])
        np.minimum(closest, np.maximum(dist, 0.0), out=closest)
    return np.array(chosen, dtype=np.int64)


def random_indices(
    n: int, n_centers: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """Distinct rows drawn uniformly (or ∝ weight, then uniformly among zero-weight rows if short)."""
    if weights is None:
        return rng.choice(n, size=n_centers, replace=False)
    positive = np.flatnonzero(weights > 0)
    if positive.size >= n_centers:
        return rng.choice(
            positive, size=n_centers, replace=False, p=weights[positive] / weights[positive].sum()
        )
    rest = np.flatnonzero(weights <= 0)
    return np.concatenate([positive, rng.choice(rest, size=n_centers - positive.size, replace=False)])


@dataclass
class StreamingCenters:
    """The mini-batch stage: ``k × extra_center_factor`` running centres and their point counts."""

    centers: np.ndarray  # (K, d) float64
    counts: np.ndarray  # (K,) float64: (decayed) points absorbed
    half_life_time_size: int = 0

    @classmethod
    def from_first_batch(
        cls,
        features: Features,
        n_centers: int,
        init_method: str,
        rng: np.random.Generator,
        half_life_time_size: int,
    ) -> StreamingCenters:
        if init_method == "kmeans++":
            rows = kmeanspp_indices(features, n_centers, rng)
        else:
            rows = random_indices(features.shape[0], n_centers, rng)
        return cls(_dense_rows(features, rows), np.zeros(n_centers), half_life_time_size)

    def partial_fit(self, features: Features) -> float:
        """Absorb one mini-batch; returns the sum of squared distances at assignment time."""
        centers32 = self.centers.astype(np.float32)
        labels, sq = nearest_centers(features, centers32)
        n_centers = self.centers.shape[0]
        n_new = np.bincount(labels, minlength=n_centers).astype(np.float64)
        sums = _group_sums(labels, n_centers, features)
        if self.half_life_time_size > 0:
            # every point's weight halves after half_life_time_size further points
            self.counts *= 0.5 ** (features.shape[0] / self.half_life_time_size)
        hit = n_new > 0
        share = n_new[hit] / (self.counts[hit] + n_new[hit])
        means = sums[hit] / n_new[hit, None]
        self.centers[hit] += share[:, None] * (means - self.centers[hit])
        self.counts += n_new
        return float(sq.sum())


@dataclass
class LloydResult:
    centers: np.ndarray
    msd: float  # weighted mean squared distance of the streaming centres to these


def weighted_lloyd(
    points: np.ndarray, weights: np.ndarray, initial: np.ndarray, max_iter: int, tol: float
) -> LloydResult:
    """Lloyd's iterations on weighted points; stops when the relative drop in loss is ≤ ``tol``."""
    centers = initial.astype(np.float64, copy=True)
    k = centers.shape[0]
    total_weight = float(weights.sum())
    previous = np.inf
    iterations = 0
    while True:
        labels, sq = nearest_centers(points, centers)
        loss = float(weights @ sq) / total_weight
        converged = np.isfinite(previous) and previous - loss <= tol * previous
        if iterations == max_iter or converged or loss == 0.0:
            break
        previous = loss
        mass = np.bincount(labels, weights=weights, minlength=k)
        sums = _group_sums(labels, k, points, weights)
        filled = mass > 0  # a centre that lost all its points stays where it is
        centers[filled] = sums[filled] / mass[filled, None]
        iterations += 1
    return LloydResult(centers, loss)


def reduce_centers(
    centers: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    init_method: str,
    max_iter: int,
    tol: float,
    num_trials: int,
    rng: np.random.Generator,
    on_trial: Callable[[int, LloydResult], None] | None = None,
) -> LloydResult:
    """The local Lloyd's stage: best of ``num_trials`` weighted runs from fresh seeds."""
    best: LloydResult | None = None
    for trial in range(num_trials):
        if init_method == "kmeans++":
            rows = kmeanspp_indices(centers, k, rng, weights)
        else:
            rows = random_indices(centers.shape[0], k, rng, weights)
        result = weighted_lloyd(centers, weights, centers[rows], max_iter, tol)
        if on_trial is not None:
            on_trial(trial, result)
        if best is None or result.msd < best.msd:
            best = result
    assert best is not None  # num_trials >= 1 by schema
    return best
