"""Small helpers shared by the strategies: seeding and assignment identity."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

import numpy as np

from forgeml.tuning.base import PENDING, Trial
from forgeml.tuning.space import SearchSpace


def resolve_seed(seed: int | None) -> int:
    """The seed a strategy uses: the tuning job's RandomSeed, or fresh entropy when none was given
    (a strategy is then deterministic within its own lifetime only)."""
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, keys...): e.g. one stream per proposal number, so that
    proposal ``k`` is the same whether it was asked for alone or in a batch."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed & (2**63 - 1), *keys])))


def running_keys(space: SearchSpace, trials: Iterable[Trial]) -> set[tuple[str, ...]]:
    return {space.key(t.hyperparameters) for t in trials if t.status == PENDING}


_controller: Any = None


def single_threaded_blas() -> AbstractContextManager[Any]:
    """A context that limits BLAS to one thread. The GP's matrices are small (a few hundred rows),
    where OpenBLAS threads only add hand-off latency, and on a loaded machine their spin-waiting
    made a proposal 3 to 5 times slower. Uses threadpoolctl (a dependency of scikit-learn) when
    it is there; the controller is built once (building one costs ~0.3 ms, entering it ~10 us)."""
    global _controller
    try:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        return cast(AbstractContextManager[Any], _controller.limit(limits=1, user_api="blas"))
    except Exception:  # threadpoolctl missing or unable to inspect the libraries: run as is
        return nullcontext()
