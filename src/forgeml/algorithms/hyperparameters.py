"""Hyperparameter schemas: one declaration per algorithm, validated in one place.

SageMaker passes every hyperparameter as a string. A schema turns the string map into typed values
with defaults filled in, and rejects what the algorithm does not honour, with messages that name
the parameter and the rule (``Value '0' at 'HyperParameters.epochs' failed to satisfy constraint:
Member must be an integer greater than or equal to 1``). The same schema runs at job creation (a
ValidationException) and inside the job (a ClientError), so the two can never disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forgeml.errors import ValidationException

AUTO = "auto"

# Keys the platform itself injects (tuning, SDK bookkeeping); accepted by every algorithm.
PLATFORM_KEYS = frozenset({"_tuning_objective_metric", "sagemaker_estimator_class_name", "sagemaker_estimator_module"})


class HyperparameterError(ValidationException):
    """A hyperparameter value breaks its rule (a ValidationException with the parameter named)."""


def _constraint(name: str, raw: str, rule: str) -> HyperparameterError:
    return HyperparameterError(
        f"Value '{raw}' at 'HyperParameters.{name}' failed to satisfy constraint: Member must {rule}"
    )


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: its type, default, bounds and whether it may be ``auto``.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``str``, ``categorical``, ``int_list``,
    ``float_list``, ``json``. Bounds are inclusive unless ``min_exclusive``/``max_exclusive``.
    """

    name: str
    kind: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple[str, ...] = ()
    allow_auto: bool = False
    description: str = ""

    def rule_text(self) -> str:
        parts: list[str] = []
        noun = {
            "int": "an integer",
            "float": "a number",
            "bool": "a boolean (true or false)",
            "str": "a string",
            "categorical": "one of [" + ", ".join(self.choices) + "]",
            "int_list": "a list of integers",
            "float_list": "a list of numbers",
            "json": "valid JSON",
        }[self.kind]
        parts.append(f"be {noun}")
        if self.minimum is not None:
            parts.append(f"greater than {'' if self.min_exclusive else 'or equal to '}{_fmt(self.minimum)}")
        if self.maximum is not None:
            joiner = "and less than" if parts[-1:] and self.minimum is not None else "less than"
            parts.append(f"{joiner} {'' if self.max_exclusive else 'or equal to '}{_fmt(self.maximum)}")
        text = " ".join(parts)
        if self.allow_auto:
            text += " or 'auto'"
        return text

    def parse(self, raw: Any) -> Any:
        """Convert the string SageMaker sends into a typed value, or raise HyperparameterError."""
        text = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, list | dict) else str(raw)
        stripped = text.strip()
        if self.allow_auto and stripped.lower() == AUTO:
            return AUTO
        try:
            value = self._convert(stripped)
        except (ValueError, TypeError):
            raise _constraint(self.name, text, self.rule_text()) from None
        self._check_bounds(value, text)
        return value

    def _convert(self, text: str) -> Any:
        if self.kind == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if self.kind == "float":
            number = float(text)
            if math.isnan(number) or math.isinf(number):
                raise ValueError(text)
            return number
        if self.kind == "bool":
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(text)
        if self.kind == "categorical":
            for choice in self.choices:
                if text == choice or text.lower() == choice.lower():
                    return choice
            raise ValueError(text)
        if self.kind in ("int_list", "float_list"):
            items = json.loads(text) if text.startswith("[") else [t for t in text.replace(" ", "").split(",") if t]
            if not isinstance(items, list):
                raise ValueError(text)
            cast: Callable[[Any], Any] = int if self.kind == "int_list" else float
            return [cast(item) for item in items]
        if self.kind == "json":
            return json.loads(text)
        return text

    def _check_bounds(self, value: Any, raw: str) -> None:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, int | float) or isinstance(item, bool):
                continue
            low_bad = self.minimum is not None and (
                item <= self.minimum if self.min_exclusive else item < self.minimum
            )
            high_bad = self.maximum is not None and (
                item >= self.maximum if self.max_exclusive else item > self.maximum
            )
            if low_bad or high_bad:
                raise _constraint(self.name, raw, self.rule_text())


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def Int(name: str, default: Any = None, **kw: Any) -> Hyperparameter:  # noqa: N802 - reads like a type
    return Hyperparameter(name, "int", default, **kw)


def Float(name: str, default: Any = None, **kw: Any) -> Hyperparameter:  # noqa: N802
    return Hyperparameter(name, "float", default, **kw)


def Bool(name: str, default: Any = None, **kw: Any) -> Hyperparameter:  # noqa: N802
    return Hyperparameter(name, "bool", default, **kw)


def Categorical(name: str, choices: Iterable[str], default: Any = None, **kw: Any) -> Hyperparameter:  # noqa: N802
    return Hyperparameter(name, "categorical", default, choices=tuple(choices), **kw)


def Str(name: str, default: Any = None, **kw: Any) -> Hyperparameter:  # noqa: N802
    return Hyperparameter(name, "str", default, **kw)


@dataclass
class HyperparameterSchema:
    """The full set of hyperparameters an algorithm honours."""

    algorithm: str
    parameters: list[Hyperparameter]
    by_name: dict[str, Hyperparameter] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.parameters}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters if not p.required}

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Typed values for every parameter (defaults filled in); errors name the parameter."""
        unknown = sorted(k for k in raw if k not in self.by_name and k not in PLATFORM_KEYS)
        if unknown:
            names = ", ".join(f"'{k}'" for k in unknown)
            raise HyperparameterError(
                f"HyperParameters: Additional properties are not allowed ({names} "
                f"{'was' if len(unknown) == 1 else 'were'} unexpected) for algorithm {self.algorithm}; "
                f"accepted hyperparameters: {', '.join(sorted(self.by_name))}"
            )
        missing = [p.name for p in self.parameters if p.required and p.name not in raw]
        if missing:
            raise HyperparameterError(
                f"HyperParameters: missing required hyperparameter(s) {', '.join(repr(m) for m in missing)} "
                f"for algorithm {self.algorithm}"
            )
        values = self.defaults()
        for key, text in raw.items():
            if key in self.by_name:
                values[key] = self.by_name[key].parse(text)
        return values
