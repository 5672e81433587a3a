"""The three index types SageMaker's k-NN offers, with FAISS's semantics, in numpy/scikit-learn.

* ``faiss.Flat``: exact search. L2 goes through scikit-learn's ``NearestNeighbors`` (a k-d tree
  or its parallel brute-force kernel, whichever is faster for the width); inner product through a
  blocked matrix product, which scikit-learn does not offer.
* ``faiss.IVFFlat``: an inverted file. A coarse k-means quantiser splits the vectors into
  ``nlist`` lists; a query scans the ``nprobe`` lists whose centroids are closest.
* ``faiss.IVFPQ``: the same inverted file, but each vector is stored as a product-quantised code of
  its residual from the list centroid (``m`` sub-vectors, 256 centroids each, one byte per
  sub-vector), and distances are computed from per-query lookup tables (asymmetric distances).

Distances follow FAISS: squared L2 for ``L2`` (ascending), inner products for ``IP`` (descending).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

L2 = "L2"
IP = "IP"
PQ_CENTROIDS = 256  # FAISS's nbits=8
# FAISS's k-means defaults: at most 256 points per centroid; 10 rounds for the IVF coarse
# quantiser (IndexIVF.cp.niter) and 25 for product-quantiser codebooks (ClusteringParameters)
MAX_POINTS_PER_CENTROID = 256
IVF_KMEANS_ITERATIONS = 10
PQ_KMEANS_ITERATIONS = 25
# bound on a block of the query × database score matrix, in float32 cells
BLOCK_CELLS = 1 << 24


def _top_smallest(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest scores of each row, in ascending order, and their columns."""
    if k < scores.shape[1]:
        columns = np.argpartition(scores, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(scores, columns, axis=1)
    else:
        columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
        picked = scores
    order = np.argsort(picked, axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(columns, order, axis=1)


def brute_force(
    queries: np.ndarray, vectors: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``vectors`` for each query, by blocked matrix products."""
    k = min(k, vectors.shape[0])
    vector_sq = np.einsum("ij,ij->i", vectors, vectors)
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    step = max(1, BLOCK_CELLS // max(1, vectors.shape[0]))
    for start in range(0, queries.shape[0], step):
        block = queries[start : start + step]
        cross = block @ vectors.T
        if metric == L2:
            cross *= -2.0
            cross += vector_sq
            best, where = _top_smallest(cross, k)
            best += np.einsum("ij,ij->i", block, block)[:, None]
            np.maximum(best, 0.0, out=best)
        else:
            np.negative(cross, out=cross)
            best, where = _top_smallest(cross, k)
            np.negative(best, out=best)
        distances[start : start + step] = best
        ids[start : start + step] = where
    return distances, ids


def train_kmeans(points: np.ndarray, n_clusters: int, seed: int, iterations: int) -> np.ndarray:
    """Centroids as FAISS trains them: random init, at most 256 points per centroid."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    limit = MAX_POINTS_PER_CENTROID * n_clusters
    if points.shape[0] > limit:
        points = points[np.sort(rng.choice(points.shape[0], size=limit, replace=False))]
    model = KMeans(n_clusters=n_clusters, init="random", n_init=1, max_iter=iterations, random_state=seed)
    model.fit(points)
    return np.ascontiguousarray(model.cluster_centers_, dtype=np.float32)


@dataclass
class FlatIndex:
    """Exact search over every stored vector (``faiss.IndexFlatL2`` / ``IndexFlatIP``)."""

    metric: str
    vectors: np.ndarray
    _searcher: Any = field(default=None, init=False, repr=False)

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.metric != L2:
            return brute_force(queries, self.vectors, k, self.metric)
        if self._searcher is None:
            from sklearn.neighbors import NearestNeighbors

            self._searcher = NearestNeighbors(algorithm="auto").fit(self.vectors)
        distances, ids = self._searcher.kneighbors(queries, n_neighbors=min(k, self.ntotal))
        return np.square(distances).astype(np.float32), ids.astype(np.int64)


@dataclass
class ProductQuantizer:
    """``m`` codebooks of 256 centroids over consecutive ``dim / m`` slices of a vector."""

    codebooks: np.ndarray  # (m, 256, dsub) float32

    @property
    def m(self) -> int:
        return int(self.codebooks.shape[0])

    @property
    def dsub(self) -> int:
        return int(self.codebooks.shape[2])

    @classmethod
    def train(cls, residuals: np.ndarray, m: int, seed: int) -> ProductQuantizer:
        dsub = residuals.shape[1] // m
        books = [
            train_kmeans(
                np.ascontiguousarray(residuals[:, j * dsub : (j + 1) * dsub]),
                PQ_CENTROIDS,
                seed + j,
                PQ_KMEANS_ITERATIONS,
            )
            for j in range(m)
        ]
        return cls(np.stack(books).astype(np.float32))

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        codes = np.empty((vectors.shape[0], self.m), dtype=np.uint8)
        for j in range(self.m):
            part = np.ascontiguousarray(vectors[:, j * self.dsub : (j + 1) * self.dsub])
            codes[:, j] = brute_force(part, self.codebooks[j], 1, L2)[1][:, 0]
        return codes

    def tables(self, residuals: np.ndarray) -> np.ndarray:
        """(n, m, 256) squared distances from each residual slice to each codeword."""
        parts = residuals.reshape(residuals.shape[0], self.m, 1, self.dsub)
        diff = parts - self.codebooks[None, :, :, :]
        return np.einsum("nmcd,nmcd->nmc", diff, diff)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        slices = [self.codebooks[j][codes[:, j]] for j in range(self.m)]
        return np.concatenate(slices, axis=1)


@dataclass
class IVFIndex:
    """An inverted file over ``nlist`` coarse centroids: raw vectors (IVFFlat) or PQ codes (IVFPQ)."""

    metric: str
    centroids: np.ndarray  # (nlist, dim) float32
    offsets: np.ndarray  # (nlist + 1,) int64: list c holds rows offsets[c]:offsets[c+1]
    ids: np.ndarray  # (ntotal,) int64 ids, in list order
    nprobe: int
    vectors: np.ndarray | None = None  # (ntotal, dim) float32, IVFFlat
    pq: ProductQuantizer | None = None
    codes: np.ndarray | None = None  # (ntotal, m) uint8, IVFPQ

    @property
    def nlist(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def ntotal(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def build(
        cls, vectors: np.ndarray, metric: str, nlist: int, nprobe: int, seed: int, pq_m: int | None = None
    ) -> IVFIndex:
        centroids = train_kmeans(vectors, nlist, seed, IVF_KMEANS_ITERATIONS)
        assignment = brute_force(vectors, centroids, 1, metric)[1][:, 0]
        order = np.argsort(assignment, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(assignment, minlength=nlist))]).astype(np.int64)
        ordered = np.ascontiguousarray(vectors[order])
        if pq_m is None:
            return cls(metric, centroids, offsets, order.astype(np.int64), nprobe, vectors=ordered)
        residuals = ordered - centroids[assignment[order]]
        pq = ProductQuantizer.train(residuals, pq_m, seed + 1)
        return cls(
            metric, centroids, offsets, order.astype(np.int64), nprobe, pq=pq, codes=pq.encode(residuals)
        )

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.ntotal)
        distances, ids = self._search(queries, k, min(self.nprobe, self.nlist))
        short = np.flatnonzero((ids < 0).any(axis=1))
        if short.size:  # the probed lists held fewer than k vectors: scan every list for those queries
            distances[short], ids[short] = self._search(queries[short], k, self.nlist)
        return distances, ids

    def _search(self, queries: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        n_queries = queries.shape[0]
        probes = brute_force(queries, self.centroids, nprobe, self.metric)[1]
        scores = np.full((n_queries, nprobe * k), np.inf, dtype=np.float32)
        found = np.full((n_queries, nprobe * k), -1, dtype=np.int64)
        flat_lists = probes.ravel()
        order = np.argsort(flat_lists, kind="stable")
        lists, starts = np.unique(flat_lists[order], return_index=True)
        bounds = np.append(starts, order.shape[0])
        with threadpool_limits(limits=1, user_api="blas"):  # many small products: threads only contend
            self._scan_lists(queries, k, nprobe, order, lists, bounds, scores, found)
        best, where = _top_smallest(scores, k)
        ids = np.take_along_axis(found, where, axis=1)
        ids[~np.isfinite(best)] = -1
        if self.metric == IP:
            best = -best
        return best.astype(np.float32), ids

    def _scan_lists(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int,
        order: np.ndarray,
        lists: np.ndarray,
        bounds: np.ndarray,
        scores: np.ndarray,
        found: np.ndarray,
    ) -> None:
        """Score each probed list against the queries that probe it; keep each list's best k per query."""
        for position, list_no in enumerate(lists.tolist()):
            lo, hi = int(self.offsets[list_no]), int(self.offsets[list_no + 1])
            if hi == lo:
                continue
            entries = order[bounds[position] : bounds[position + 1]]
            rows, ranks = np.divmod(entries, nprobe)
            list_scores = self._list_scores(queries[rows], list_no, lo, hi)
            take = min(k, hi - lo)
            best, where = _top_smallest(list_scores, take)
            columns = ranks[:, None] * k + np.arange(take)
            scores[rows[:, None], columns] = best
            found[rows[:, None], columns] = self.ids[lo + where]

    def _list_scores(self, queries: np.ndarray, list_no: int, lo: int, hi: int) -> np.ndarray:
        """Scores to minimise for queries × the vectors of one list (L2: squared distance, IP: −ip)."""
        if self.pq is None:
            assert self.vectors is not None
            stored = self.vectors[lo:hi]
            cross = queries @ stored.T
            if self.metric == IP:
                return -cross
            sq = np.einsum("ij,ij->i", stored, stored)
            result = sq[None, :] - 2.0 * cross + np.einsum("ij,ij->i", queries, queries)[:, None]
            return np.maximum(result, 0.0)
        assert self.codes is not None
        tables = self.pq.tables(queries - self.centroids[list_no])
        codes = self.codes[lo:hi]
        total = np.zeros((queries.shape[0], hi - lo), dtype=np.float32)
        for j in range(self.pq.m):
            total += tables[:, j, :][:, codes[:, j]]
        return total
