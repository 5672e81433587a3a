"""A robust random cut forest (Guha, Mishra, Roy, Schrijvers, ICML 2016), vectorised with numpy.

Building: every tree recursively cuts the bounding box of its points, choosing the dimension with
probability proportional to its side length and the cut uniformly along it, until each leaf holds
one distinct point (duplicates share a leaf whose mass is their count). All trees grow together,
level by level, so the work is a few numpy passes per depth rather than a Python call per node.

Scoring: a point is scored by inserting it into each tree and measuring its collusive displacement
(CoDisp): the largest ``|sibling(C)| / |C|`` over the subtrees ``C`` on its path that contain it,
which is how many points the tree would stop needing to describe if ``C`` were removed, per point
removed. Insertion descends the tree; at a node with box ``B`` a fresh random cut over
``B ∪ {x}`` separates ``x`` from ``B`` with probability ``q = Σ extension / Σ span(B ∪ {x})``, and
then ``x`` becomes the sibling of that node; otherwise ``x`` follows the node's stored cut. The
score per tree is the expectation of CoDisp over those separation events, computed exactly along
the path (no sampling noise), and the forest score is the mean over trees. High means anomalous.

SageMaker says it scales the forest's score "with respect to the sample size" without giving the
constant (UNVERIFIED), so the mean CoDisp is returned unscaled: typical points score a few units,
an isolated point up to ``num_samples_per_tree``. Thresholds such as mean + 3 standard deviations
are unaffected by a constant factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

LEAF = -1
_PAIR_CHUNK = 1 << 18  # (point, tree) pairs scored at once, bounding scratch memory


@dataclass
class Forest:
    """All trees' nodes in flat arrays; tree ``t`` starts at node ``roots[t]``.

    ``lower``/``upper`` are each node's bounding box, ``mass`` its number of points, ``cut_dim`` the
    cut dimension (``LEAF`` for leaves) and ``cut_value`` the cut: ``x[cut_dim] <= cut_value`` goes
    to ``left``, otherwise to ``right``.
    """

    lower: np.ndarray
    upper: np.ndarray
    mass: np.ndarray
    cut_dim: np.ndarray
    cut_value: np.ndarray
    left: np.ndarray
    right: np.ndarray
    roots: np.ndarray

    @property
    def num_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.lower.shape[1])

    @property
    def samples_per_tree(self) -> int:
        return int(self.mass[self.roots[0]]) if self.num_trees else 0

    def score(self, points: np.ndarray) -> np.ndarray:
        """Mean expected CoDisp over the trees, one float64 per row of ``points``."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        n = points.shape[0]
        total = np.zeros(n, dtype=np.float64)
        per_chunk = max(1, _PAIR_CHUNK // max(self.num_trees, 1))
        for start in range(0, n, per_chunk):
            chunk = points[start : start + per_chunk]
            point_ids = np.repeat(np.arange(chunk.shape[0]), self.num_trees)
            nodes = np.tile(self.roots, chunk.shape[0])
            per_pair = self._expected_codisp(chunk, point_ids, nodes)
            total[start : start + chunk.shape[0]] = per_pair.reshape(-1, self.num_trees).mean(axis=1)
        return total

    @cached_property
    def span_sums(self) -> np.ndarray:
        """Each node's box perimeter (sum of side lengths), computed once per loaded forest."""
        return (self.upper.astype(np.float64) - self.lower).sum(axis=1)

    @cached_property
    def sibling_ratios(self) -> np.ndarray:
        """``|sibling| / (|node| + 1)`` per node: its displacement ratio once x has joined it."""
        ratios = np.zeros(self.mass.shape[0], dtype=np.float64)
        internal = np.flatnonzero(self.cut_dim != LEAF)
        for child, other in ((self.left[internal], self.right[internal]), (self.right[internal], self.left[internal])):
            ratios[child] = self.mass[other] / (self.mass[child] + 1.0)
        return ratios

    def _expected_codisp(self, points: np.ndarray, point_ids: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Expected CoDisp for each (point, start node) pair, walking all pairs down together."""
        pairs = point_ids.shape[0]
        result = np.zeros(pairs, dtype=np.float64)
        active = np.arange(pairs)
        alive = np.ones(pairs, dtype=np.float64)  # probability x is not yet separated
        worst = np.zeros(pairs, dtype=np.float64)  # the path's largest sibling ratio so far
        spans, ratios = self.span_sums, self.sibling_ratios
        while active.size:
            node = nodes
            x = points[point_ids]
            outside = np.maximum(x, self.lower[node])
            np.minimum(outside, self.upper[node], out=outside)
            outside -= x
            np.abs(outside, out=outside)
            extension = outside.sum(axis=1)
            np.maximum(worst, ratios[node], out=worst)  # roots have ratio 0
            # Separated here (only possible when x lies outside the box): x's sibling is this
            # node, ratio mass / 1, and the ancestors' ratios are those on the path.
            hit = np.flatnonzero(extension > 0)
            if hit.size:
                grow = extension[hit].astype(np.float64)
                q = grow / (spans[node[hit]] + grow)
                displaced = np.maximum(self.mass[node[hit]], worst[hit])
                result[active[hit]] += alive[hit] * q * displaced
                alive[hit] *= 1.0 - q
            leaf = self.cut_dim[node] == LEAF
            # x equal to a leaf's point joins it: CoDisp is the path maximum alone.
            ends = leaf & (alive > 0)
            result[active[ends]] += alive[ends] * worst[ends]
            keep = np.flatnonzero(~leaf & (alive > 0))
            kept_nodes = node[keep]
            go_left = x[keep, self.cut_dim[kept_nodes]] <= self.cut_value[kept_nodes]
            nodes = np.where(go_left, self.left[kept_nodes], self.right[kept_nodes])
            active, point_ids, alive, worst = active[keep], point_ids[keep], alive[keep], worst[keep]
        return result


def build_forest(sample: np.ndarray, num_trees: int, samples_per_tree: int, rng: np.random.Generator) -> Forest:
    """Grow ``num_trees`` trees on consecutive ``samples_per_tree``-row partitions of ``sample``."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    dim = sample.shape[1]
    capacity = num_trees * max(2 * samples_per_tree - 1, 1)
    lower = np.empty((capacity, dim), dtype=np.float32)
    upper = np.empty((capacity, dim), dtype=np.float32)
    mass = np.zeros(capacity, dtype=np.int32)
    cut_dim = np.full(capacity, LEAF, dtype=np.int32)
    cut_value = np.zeros(capacity, dtype=np.float64)
    left = np.full(capacity, LEAF, dtype=np.int32)
    right = np.full(capacity, LEAF, dtype=np.int32)

    # The working set: points of still-splittable nodes, grouped contiguously per node.
    points = np.arange(num_trees * samples_per_tree)
    lengths = np.full(num_trees, samples_per_tree, dtype=np.int64)
    node_ids = np.arange(num_trees, dtype=np.int64)
    roots = node_ids.astype(np.int32)
    next_id = num_trees
    while points.size:
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        values = sample[points]
        lo = np.minimum.reduceat(values, starts, axis=0)
        hi = np.maximum.reduceat(values, starts, axis=0)
        lower[node_ids], upper[node_ids], mass[node_ids] = lo, hi, lengths
        spans = (hi - lo).astype(np.float64)
        totals = spans.sum(axis=1)
        split = (lengths > 1) & (totals > 0)
        if not split.any():
            break
        # Dimension with probability proportional to its span, cut uniform inside the box.
        s_spans, s_totals = spans[split], totals[split]
        target = rng.random(s_spans.shape[0]) * s_totals
        chosen = (np.cumsum(s_spans, axis=1) <= target[:, None]).sum(axis=1)
        chosen = np.minimum(chosen, dim - 1)
        empty = s_spans[np.arange(chosen.size), chosen] <= 0
        chosen[empty] = np.argmax(s_spans[empty], axis=1)
        s_lo = lo[split][np.arange(chosen.size), chosen].astype(np.float64)
        s_hi = hi[split][np.arange(chosen.size), chosen].astype(np.float64)
        cuts = s_lo + rng.random(chosen.size) * (s_hi - s_lo)
        cuts = np.where(cuts >= s_hi, s_lo, cuts)  # rounding must never empty the right side
        split_ids = node_ids[split]
        n_split = split_ids.size
        children = next_id + np.arange(2 * n_split)
        next_id += 2 * n_split
        cut_dim[split_ids], cut_value[split_ids] = chosen, cuts
        left[split_ids], right[split_ids] = children[0::2], children[1::2]

        # Partition each splitting node's points: left part first, stable.
        segment = np.repeat(np.arange(lengths.size), lengths)
        in_split = split[segment]
        rank = np.cumsum(split) - 1  # index among splitting nodes
        seg_rank = rank[segment[in_split]]
        moving = points[in_split]
        go_left = sample[moving, chosen[seg_rank]] <= cuts[seg_rank]
        order = np.lexsort((~go_left, seg_rank))
        points = moving[order]
        n_left = np.bincount(seg_rank, weights=go_left, minlength=n_split).astype(np.int64)
        n_total = lengths[split]
        lengths = np.stack([n_left, n_total - n_left], axis=1).ravel()
        node_ids = children
    used = next_id
    return Forest(
        lower=lower[:used],
        upper=upper[:used],
        mass=mass[:used],
        cut_dim=cut_dim[:used],
        cut_value=cut_value[:used],
        left=left[:used],
        right=right[:used],
        roots=roots,
    )
