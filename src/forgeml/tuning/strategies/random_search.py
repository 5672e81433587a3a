"""Random search: independent draws from the search space, each range honouring its scaling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forgeml.tuning.base import Proposal, Strategy, Trial
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.strategies._common import resolve_seed, rng_for, running_keys

MAX_ATTEMPTS = 64  # resampling attempts when a draw repeats a running trial's assignment
ENUMERATE_LIMIT = 100_000  # finite spaces up to this size are enumerated once draws keep colliding


class RandomStrategy(Strategy):
    """Proposal number ``k`` (``k`` = number of trials so far) is drawn from its own generator
    seeded with ``(seed, k)``, so a tuning job's sequence of assignments does not depend on how
    many slots were free at each call. A draw that repeats a running trial's assignment (or one
    proposed earlier in the same batch) is drawn again; in small integer/categorical spaces, after
    ``MAX_ATTEMPTS`` collisions one of the free assignments is picked uniformly, and when none is
    free the strategy returns fewer proposals than asked. Completed trials may be repeated (the
    draws are independent, as in SageMaker's Random strategy). ``prior_trials`` is ignored: random
    draws do not learn from anything."""

    def __init__(self, space: SearchSpace, *, minimize: bool, seed: int | None = None,
                 max_jobs: int | None = None, prior_trials: Sequence[Trial] = ()) -> None:
        super().__init__(space, minimize=minimize, seed=seed, max_jobs=max_jobs)
        self._seed = resolve_seed(seed)

    def suggest(self, trials: list[Trial], count: int) -> list[Proposal]:
        taken = running_keys(self.space, trials)
        out: list[Proposal] = []
        for i in range(max(0, count)):
            assignment = draw_free(self.space, rng_for(self._seed, len(trials) + i), taken)
            if assignment is None:
                break
            taken.add(self.space.key(assignment))
            out.append(Proposal(assignment))
        return out


def draw_free(space: SearchSpace, rng: np.random.Generator, taken: set[tuple[str, ...]]) -> dict[str, str] | None:
    """A random assignment whose key is not in ``taken``; None when a finite space has no free one
    left (or, in a huge discrete space, after ``MAX_ATTEMPTS`` collisions, which does not happen
    in practice: at most 100 trials run at once)."""
    for _ in range(MAX_ATTEMPTS):
        draw = space.sample(rng, 1)[0]
        if space.key(draw) not in taken:
            return draw
    size = space.finite_size()
    if size is None or size > ENUMERATE_LIMIT:
        return None
    free = [a for a in space.enumerate() if space.key(a) not in taken]
    if not free:
        return None
    return free[int(rng.integers(len(free)))]
