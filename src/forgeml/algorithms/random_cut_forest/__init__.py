"""Random Cut Forest (SageMaker's ``randomcutforest`` built-in algorithm)."""

from forgeml.algorithms.random_cut_forest.algorithm import RandomCutForest

ALGORITHM = RandomCutForest()

__all__ = ["ALGORITHM", "RandomCutForest"]
