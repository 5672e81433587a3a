"""Built-in algorithms by name, imported only when asked for (so job start-up stays light)."""

from __future__ import annotations

import importlib
import importlib.util
import re

from forgeml.algorithms.base import BuiltinAlgorithm
from forgeml.errors import ValidationException

# registry name -> module holding a module-level ``ALGORITHM`` instance
_MODULES: dict[str, str] = {
    "linear-learner": "forgeml.algorithms.linear_learner",
    "xgboost": "forgeml.algorithms.xgboost",
    "kmeans": "forgeml.algorithms.kmeans",
    "pca": "forgeml.algorithms.pca",
    "knn": "forgeml.algorithms.knn",
    "factorization-machines": "forgeml.algorithms.factorization_machines",
    "randomcutforest": "forgeml.algorithms.random_cut_forest",
    "ipinsights": "forgeml.algorithms.ip_insights",
}

# other spellings users write: image repository names, AlgorithmName values, SDK names
_ALIASES: dict[str, str] = {
    "sagemaker-xgboost": "xgboost",
    "linearlearner": "linear-learner",
    "linear_learner": "linear-learner",
    "k-means": "kmeans",
    "k-nn": "knn",
    "factorizationmachines": "factorization-machines",
    "factorization_machines": "factorization-machines",
    "random-cut-forest": "randomcutforest",
    "random_cut_forest": "randomcutforest",
    "ip-insights": "ipinsights",
    "ip_insights": "ipinsights",
}

_IMAGE = re.compile(r"^(?:.+/)?(?P<repo>[^:/@]+)(?:[:@].*)?$")

_loaded: dict[str, BuiltinAlgorithm] = {}


def available() -> list[str]:
    """Names of the algorithms this installation ships."""
    names = []
    for name, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def canonical_name(name_or_image: str) -> str | None:
    """The registry name for an algorithm name or an image URI, or None if it is not built in."""
    match = _IMAGE.match(name_or_image.strip())
    repo = (match.group("repo") if match else name_or_image).lower()
    repo = _ALIASES.get(repo, repo)
    return repo if repo in _MODULES else None


def get_algorithm(name_or_image: str) -> BuiltinAlgorithm:
    """The algorithm for a name or image URI; a ValidationException names what was asked for."""
    name = canonical_name(name_or_image)
    if name is None or importlib.util.find_spec(_MODULES[name]) is None:
        raise ValidationException(
            f"Value '{name_or_image}' at 'algorithmSpecification' failed to satisfy constraint: "
            f"not a built-in algorithm; available: {', '.join(available())}"
        )
    if name not in _loaded:
        module = importlib.import_module(_MODULES[name])
        _loaded[name] = module.ALGORITHM
    return _loaded[name]
