"""IP Insights (SageMaker's ``ipinsights`` built-in algorithm)."""

from forgeml.algorithms.ip_insights.algorithm import IPInsights

ALGORITHM = IPInsights()

__all__ = ["ALGORITHM", "IPInsights"]
