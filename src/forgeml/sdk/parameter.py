"""Tuning ranges as sagemaker.parameter defines them: Integer, Continuous and Categorical."""

from __future__ import annotations

import json
from typing import Any


class ParameterRange:
    __name__ = "ParameterRange"
    range_key = ""

    def __init__(self, min_value: float | int, max_value: float | int, scaling_type: str = "Auto") -> None:
        self.min_value = min_value
        self.max_value = max_value
        self.scaling_type = scaling_type

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "MinValue": str(self.min_value), "MaxValue": str(self.max_value),
                "ScalingType": self.scaling_type}


class IntegerParameter(ParameterRange):
    __name__ = "Integer"
    range_key = "IntegerParameterRanges"


class ContinuousParameter(ParameterRange):
    __name__ = "Continuous"
    range_key = "ContinuousParameterRanges"


class CategoricalParameter(ParameterRange):
    __name__ = "Categorical"
    range_key = "CategoricalParameterRanges"

    def __init__(self, values: list[Any] | Any) -> None:
        self.values = [str(v) if not isinstance(v, str) else v for v in (values if isinstance(values, list) else [values])]

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Values": list(self.values)}

    def as_json_range(self, name: str) -> dict[str, Any]:
        """Framework (script-mode) estimators send categorical values JSON-encoded."""
        return {"Name": name, "Values": [json.dumps(v) for v in self.values]}
