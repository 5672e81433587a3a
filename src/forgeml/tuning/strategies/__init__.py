"""The search strategies of tuning jobs (``HyperParameterTuningJobConfig.Strategy``).

``create_strategy`` builds one by its SageMaker name. Hyperband lives in its own module, imported
only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forgeml.errors import ValidationException
from forgeml.tuning.base import Strategy, Trial
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.strategies.bayesian import BayesianStrategy
from forgeml.tuning.strategies.grid import GridStrategy
from forgeml.tuning.strategies.random_search import RandomStrategy

STRATEGY_NAMES = ("Bayesian", "Random", "Grid", "Hyperband")

__all__ = ["STRATEGY_NAMES", "BayesianStrategy", "GridStrategy", "RandomStrategy", "create_strategy"]


def create_strategy(name: str, space: SearchSpace, *, minimize: bool, seed: int | None = None,
                    max_jobs: int | None = None, prior_trials: Sequence[Trial] = (),
                    hyperband_config: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy called ``name`` (``Bayesian|Random|Grid|Hyperband``).

    ``prior_trials`` are the completed trials of warm-start parent tuning jobs. ``hyperband_config``
    is ``HyperbandStrategyConfig`` (``MinResource``/``MaxResource``), used by Hyperband only.
    """
    if name == "Bayesian":
        return BayesianStrategy(space, minimize=minimize, seed=seed, max_jobs=max_jobs, prior_trials=prior_trials)
    if name == "Random":
        return RandomStrategy(space, minimize=minimize, seed=seed, max_jobs=max_jobs, prior_trials=prior_trials)
    if name == "Grid":
        return GridStrategy(space, minimize=minimize, seed=seed, max_jobs=max_jobs, prior_trials=prior_trials)
    if name == "Hyperband":
        from forgeml.tuning.strategies.hyperband import HyperbandStrategy

        config = dict(hyperband_config or {})
        if "MinResource" not in config or "MaxResource" not in config:
            raise ValidationException(
                "1 validation error detected: Value 'null' at "
                "'hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig' failed to satisfy "
                "constraint: Member must give MinResource and MaxResource when Strategy is Hyperband")
        return HyperbandStrategy(space, minimize=minimize, seed=seed, max_jobs=max_jobs,
                                 min_resource=int(config["MinResource"]), max_resource=int(config["MaxResource"]),
                                 prior_trials=prior_trials)
    raise ValidationException(
        f"1 validation error detected: Value '{name}' at 'hyperParameterTuningJobConfig.strategy' failed to "
        f"satisfy constraint: Member must satisfy enum value set: [{', '.join(STRATEGY_NAMES)}]")
