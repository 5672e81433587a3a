"""MetricDefinitions: regexes applied to every log line, each match one timestamped data point."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable


class MetricExtractor:
    def __init__(self, definitions: Iterable[dict[str, str]]) -> None:
        self.patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]

    def scan(self, line: str, timestamp: float) -> list[tuple[str, float, float]]:
        """Every metric the line reports, as (name, value, timestamp); SageMaker reads group 1."""
        points = []
        for name, pattern in self.patterns:
            # Search the CloudWatch rendering too, where a TAB shows as "#011" (XGBoost regexes rely on it).
            for text in (line, line.replace("\t", "#011")) if "\t" in line else (line,):
                found = pattern.search(text)
                if found and found.groups():
                    try:
                        value = float(found.group(1))
                    except (TypeError, ValueError):
                        continue
                    if math.isfinite(value):
                        points.append((name, value, timestamp))
                    break
        return points
