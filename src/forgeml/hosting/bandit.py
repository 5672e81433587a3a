"""Multi-armed bandit routing across production variants (a forgeml extension).

Instead of fixed variant weights, an endpoint can shift traffic to the variant whose predictions turn out
right while still trying the others. Thompson sampling does that with one Beta posterior per variant:
each request goes to the variant with the highest draw from its posterior, and a reward in [0, 1]
(1 = that variant's prediction was right) adds r to alpha and 1 - r to beta, starting from Beta(1, 1).

``choose`` runs once per request, so draws come from small per-variant batches sampled with numpy; a
reward discards only that variant's batch, so every choice still uses fresh draws from the current
posteriors. ``FeedbackLog`` remembers which variant served an inference id, so a client can send the
reward with the request's inference id alone.
"""

from __future__ import annotations

import math
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DRAW_BATCH = 32  # numpy draws per refill: large enough to amortize the call, small enough to stay cheap
FEEDBACK_CAPACITY = 100_000


class _Arm:
    """One variant's Beta posterior, its counters and its batch of ready draws."""

    __slots__ = ("alpha", "beta", "rewards", "pulls", "draws")

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, rewards: int = 0, pulls: int = 0) -> None:
        self.alpha = alpha
        self.beta = beta
        self.rewards = rewards
        self.pulls = pulls
        self.draws: list[float] = []

    def as_dict(self) -> dict[str, float | int]:
        return {"alpha": self.alpha, "beta": self.beta, "rewards": self.rewards, "pulls": self.pulls}


def _check_variants(variants: Sequence[str]) -> list[str]:
    names = list(variants)
    if not names:
        raise ValueError("Bandit routing needs at least one variant")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Variant names must be unique; repeated: {', '.join(repeated)}")
    return names


def _check_min_share(min_share: float, variant_count: int) -> float:
    """The exploration floor: each variant gets at least ``min_share``, so all floors together fit in 1."""
    if not (0.0 <= min_share <= 1.0 / variant_count):
        raise ValueError(f"min_share must be between 0 and 1/{variant_count} (one share per variant), got {min_share}")
    return float(min_share)


class ThompsonSampling:
    """Chooses a production variant per request by Thompson sampling over Beta posteriors."""

    def __init__(self, variants: Sequence[str], *, min_share: float = 0.0, rng: random.Random | None = None) -> None:
        names = _check_variants(variants)
        self._min_share = _check_min_share(min_share, len(names))
        self._rng = rng or random.Random()
        self._numpy = np.random.default_rng(self._rng.getrandbits(64))
        self._lock = threading.Lock()
        self._arms: dict[str, _Arm] = {name: _Arm() for name in names}
        self._order: list[tuple[str, _Arm]] = list(self._arms.items())

    @property
    def variants(self) -> list[str]:
        return [name for name, _ in self._order]

    @property
    def min_share(self) -> float:
        return self._min_share

    # -- hot path ---------------------------------------------------------------------------------
    def choose(self) -> str:
        """The variant for the next request: the highest posterior draw, or a uniform pick for exploration."""
        with self._lock:
            order = self._order
            if self._min_share and self._rng.random() < self._min_share * len(order):
                name, arm = order[int(self._rng.random() * len(order))]
                arm.pulls += 1
                return name
            best_name, best_arm, best_draw = order[0][0], order[0][1], -1.0
            for name, arm in order:
                draws = arm.draws
                if not draws:
                    draws = arm.draws = self._numpy.beta(arm.alpha, arm.beta, DRAW_BATCH).tolist()
                draw = draws.pop()
                if draw > best_draw:
                    best_name, best_arm, best_draw = name, arm, draw
            best_arm.pulls += 1
            return best_name

    # -- feedback ---------------------------------------------------------------------------------
    def reward(self, variant: str, value: float) -> None:
        """Record how right ``variant`` was for one request: ``value`` in [0, 1], 1 meaning right."""
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
                or not 0.0 <= value <= 1.0:
            raise ValueError(f"The reward for variant {variant} must be a number between 0 and 1, got {value!r}")
        with self._lock:
            arm = self._arms.get(variant)
            if arm is None:
                raise ValueError(f"Unknown variant {variant}: the bandit routes across "
                                 f"{', '.join(self.variants)}")
            arm.alpha += float(value)
            arm.beta += 1.0 - float(value)
            arm.rewards += 1
            arm.draws = []  # drawn from the old posterior

    # -- reporting --------------------------------------------------------------------------------
    def shares(self, samples: int = 4000) -> dict[str, float]:
        """Estimated probability that ``choose`` picks each variant (DescribeEndpoint's CurrentWeight)."""
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        with self._lock:
            names = self.variants
            alphas = np.array([arm.alpha for _, arm in self._order])
            betas = np.array([arm.beta for _, arm in self._order])
            seed = self._rng.getrandbits(64)
        draws = np.random.default_rng(seed).beta(alphas, betas, size=(samples, len(names)))
        wins = np.bincount(draws.argmax(axis=1), minlength=len(names)) / samples
        explore = self._min_share * len(names)
        return {name: float(self._min_share + (1.0 - explore) * win) for name, win in zip(names, wins, strict=True)}

    def counts(self) -> dict[str, dict[str, float | int]]:
        """Per variant: alpha, beta, rewards (feedback received) and pulls (times chosen)."""
        with self._lock:
            return {name: arm.as_dict() for name, arm in self._order}

    # -- persistence and endpoint updates ---------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot the host stores, so posteriors and shares survive a restart."""
        with self._lock:
            return {"min_share": self._min_share, "variants": {name: arm.as_dict() for name, arm in self._order}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, rng: random.Random | None = None) -> ThompsonSampling:
        variants = state.get("variants")
        if not isinstance(variants, Mapping) or not variants:
            raise ValueError("A bandit state needs a non-empty 'variants' mapping")
        bandit = cls(list(variants), min_share=float(state.get("min_share", 0.0)), rng=rng)
        for name, saved in variants.items():
            alpha, beta = float(saved["alpha"]), float(saved["beta"])
            if not (alpha > 0 and beta > 0):
                raise ValueError(f"Variant {name} has an invalid posterior Beta({alpha}, {beta}) in the bandit state")
            arm = bandit._arms[name]
            arm.alpha, arm.beta = alpha, beta
            arm.rewards, arm.pulls = int(saved.get("rewards", 0)), int(saved.get("pulls", 0))
        return bandit

    def set_variants(self, variants: Sequence[str]) -> None:
        """Follow an endpoint update: variants that remain keep their posteriors, new ones start at Beta(1, 1)."""
        names = _check_variants(variants)
        _check_min_share(self._min_share, len(names))
        with self._lock:
            self._arms = {name: self._arms.get(name) or _Arm() for name in names}
            self._order = list(self._arms.items())


class FeedbackLog:
    """Which variant served each recent inference id (bounded, least recently used forgotten first)."""

    def __init__(self, capacity: int = FEEDBACK_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._served: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, inference_id: str, variant: str) -> None:
        with self._lock:
            self._served[inference_id] = variant
            self._served.move_to_end(inference_id)
            if len(self._served) > self.capacity:
                self._served.popitem(last=False)

    def variant_for(self, inference_id: str) -> str | None:
        with self._lock:
            variant = self._served.get(inference_id)
            if variant is not None:
                self._served.move_to_end(inference_id)
            return variant

    def __len__(self) -> int:
        return len(self._served)
