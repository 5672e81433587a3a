"""SageMaker's XGBoost algorithm (algorithm mode of the ``sagemaker-xgboost`` 1.x images), natively."""

from forgeml.algorithms.xgboost.algorithm import XGBoostAlgorithm

ALGORITHM = XGBoostAlgorithm()

__all__ = ["ALGORITHM", "XGBoostAlgorithm"]
