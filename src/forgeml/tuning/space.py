"""The search space of a tuning job: SageMaker's ``ParameterRanges``, validated, plus unit-cube transforms.

A :class:`SearchSpace` is an ordered list of :class:`ParameterRange` (integer ranges first, then
continuous, then categorical, each in request order, as SageMaker lists them). Strategies work in
the *encoded* space ``[0, 1]^D``:

* a numeric range takes one dimension, scaled by its ScalingType: ``Linear`` maps ``[min, max]``
  affinely, ``Logarithmic`` maps ``log x`` affinely, ``ReverseLogarithmic`` maps ``log(1 - x)``
  affinely (so uniform draws in the unit interval are log-uniform in ``1 - x``: denser near 1);
* a categorical range takes one dimension per value (one-hot); decoding picks the largest.

Decoding rounds integers to the nearest integer (after mapping back from the scaled space) and
clips them to the range; continuous values are clipped to the range and written with ``repr``
(shortest round-tripping text); categorical values are the request's strings, unchanged.

``Auto`` scaling: SageMaker says only that "the service chooses" (UNVERIFIED). forgeml picks
``Logarithmic`` when ``min > 0`` and the range spans at least two decades (``max / min >= 100``,
e.g. a learning rate in ``[1e-4, 1e-1]``), ``Linear`` otherwise. It never picks
``ReverseLogarithmic``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgeml.errors import ValidationException

INTEGER = "Integer"
CONTINUOUS = "Continuous"
CATEGORICAL = "Categorical"

AUTO = "Auto"
LINEAR = "Linear"
LOGARITHMIC = "Logarithmic"
REVERSE_LOGARITHMIC = "ReverseLogarithmic"
SCALING_TYPES = (AUTO, LINEAR, LOGARITHMIC, REVERSE_LOGARITHMIC)

MAX_RANGES = 30  # sum over the three range lists (DG "Resource Limits for Automatic Model Tuning")
MAX_CATEGORICAL_VALUES = 30
MAX_NAME_LENGTH = 256
MAX_VALUE_LENGTH = 256
AUTO_LOG_DECADES = 2.0

_LISTS = (
    ("IntegerParameterRanges", INTEGER),
    ("ContinuousParameterRanges", CONTINUOUS),
    ("CategoricalParameterRanges", CATEGORICAL),
)


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter. ``min_value``/``max_value`` are unused for categoricals,
    ``values`` is empty for numeric ranges. ``scaling`` is what the request asked for (``Auto``
    included); :attr:`effective_scaling` is what forgeml applies."""

    name: str
    kind: str
    min_value: float = 0.0
    max_value: float = 1.0
    values: tuple[str, ...] = ()
    scaling: str = AUTO

    @property
    def is_numeric(self) -> bool:
        return self.kind != CATEGORICAL

    @functools.cached_property
    def effective_scaling(self) -> str:
        if self.kind == CATEGORICAL:
            return LINEAR
        if self.scaling != AUTO:
            return self.scaling
        if self.min_value > 0 and math.log10(self.max_value / self.min_value) >= AUTO_LOG_DECADES:
            return LOGARITHMIC
        return LINEAR

    @property
    def width(self) -> int:
        """Number of encoded dimensions."""
        return len(self.values) if self.kind == CATEGORICAL else 1

    # -- numeric transforms (vectorised) -----------------------------------------------------------
    def _forward(self, x: np.ndarray) -> np.ndarray:
        scaling = self.effective_scaling
        if scaling == LOGARITHMIC:
            return np.log(x)
        if scaling == REVERSE_LOGARITHMIC:
            return np.log1p(-x)
        return x

    def _backward(self, t: np.ndarray) -> np.ndarray:
        scaling = self.effective_scaling
        if scaling == LOGARITHMIC:
            return np.exp(t)
        if scaling == REVERSE_LOGARITHMIC:
            return -np.expm1(t)
        return t

    @functools.cached_property
    def _scaled_bounds(self) -> tuple[float, float]:
        lo, hi = self._forward(np.array([self.min_value, self.max_value], dtype=float))
        return float(lo), float(hi)

    def to_unit(self, x: np.ndarray | float) -> np.ndarray:
        """Numeric value(s) -> position(s) in [0, 1] (not clipped)."""
        lo, hi = self._scaled_bounds
        return (self._forward(np.asarray(x, dtype=float)) - lo) / (hi - lo)

    def unit_scalar(self, x: float) -> float:
        """:meth:`to_unit` of one value, without numpy's per-call overhead."""
        lo, hi = self._scaled_bounds
        scaling = self.effective_scaling
        if scaling == LOGARITHMIC:
            t = math.log(x) if x > 0 else -math.inf
        elif scaling == REVERSE_LOGARITHMIC:
            t = math.log1p(-x) if x < 1 else -math.inf
        else:
            t = x
        return (t - lo) / (hi - lo)

    def from_unit(self, u: np.ndarray | float) -> np.ndarray:
        """Position(s) in [0, 1] -> numeric value(s), clipped to the range; integers rounded."""
        lo, hi = self._scaled_bounds
        unit = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        x = np.clip(self._backward(lo + unit * (hi - lo)), self.min_value, self.max_value)
        if self.kind == INTEGER:
            x = np.clip(np.rint(x), math.ceil(self.min_value), math.floor(self.max_value))
        return np.asarray(x)

    def format(self, x: float) -> str:
        if self.kind == INTEGER:
            return str(int(x))
        return repr(float(x))

    def parse(self, text: str) -> float:
        """A numeric hyperparameter value (as a string) -> float; ValueError if it is not one."""
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {text!r} is not a finite number")
        return value

    def sample_values(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` independent draws honouring the scaling."""
        if self.kind == CATEGORICAL:
            return [self.values[i] for i in rng.integers(len(self.values), size=n)]
        if self.kind == INTEGER:
            # Each integer owns the interval [k - 1/2, k + 1/2] (in the scaled space), so the two
            # ends are as likely as any inner value under Linear scaling.
            lo, hi = self.min_value - 0.5, self.max_value + 0.5
            if self.effective_scaling == LOGARITHMIC:
                lo = max(lo, self.min_value / 2)
            tlo, thi = self._forward(np.array([lo, hi]))
            x = self._backward(rng.uniform(tlo, thi, size=n))
            x = np.clip(np.rint(x), self.min_value, self.max_value)
            return [self.format(v) for v in x]
        return [self.format(v) for v in self.from_unit(rng.uniform(0.0, 1.0, size=n))]


class SearchSpace:
    """The tuned hyperparameters of one training job definition."""

    def __init__(self, ranges: Sequence[ParameterRange]) -> None:
        self.ranges: tuple[ParameterRange, ...] = tuple(ranges)
        self.names: list[str] = [r.name for r in self.ranges]
        slices: list[slice] = []
        start = 0
        for r in self.ranges:
            slices.append(slice(start, start + r.width))
            start += r.width
        self.slices: tuple[slice, ...] = tuple(slices)
        self.dim: int = start
        #: encoded column of each numeric range, and of each integer range
        self.numeric_columns: np.ndarray = np.array([s.start for r, s in zip(self.ranges, self.slices, strict=True)
                                                     if r.is_numeric], dtype=int)
        self.integer_columns: np.ndarray = np.array([s.start for r, s in zip(self.ranges, self.slices, strict=True)
                                                     if r.kind == INTEGER], dtype=int)

    def __len__(self) -> int:
        return len(self.ranges)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self.ranges)!r})"

    def __getitem__(self, name: str) -> ParameterRange:
        for r in self.ranges:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def categorical_only(self) -> bool:
        return all(r.kind == CATEGORICAL for r in self.ranges)

    # -- parsing -------------------------------------------------------------------------------------
    @classmethod
    def from_parameter_ranges(cls, parameter_ranges: Mapping[str, Any] | None, *,
                              path: str = "parameterRanges") -> SearchSpace:
        """Parse and validate SageMaker's ``ParameterRanges`` structure.

        Every broken rule is reported at once, AWS style, in one ValidationException whose
        message names each member (``parameterRanges.integerParameterRanges.1.minValue``).
        """
        errors: list[str] = []

        def fail(value: Any, member: str, rule: str) -> None:
            shown = "null" if value is None else str(value)
            errors.append(f"Value '{shown}' at '{member}' failed to satisfy constraint: Member must {rule}")

        if parameter_ranges is None:
            parameter_ranges = {}
        if not isinstance(parameter_ranges, Mapping):
            fail(parameter_ranges, path, "be a structure")
            _raise(errors)
        known = {key for key, _ in _LISTS} | {"AutoParameters"}
        for key in parameter_ranges:
            if key not in known:
                fail(key, f"{path}.{_camel(str(key))}", f"be one of the members {', '.join(sorted(known))}")
        if parameter_ranges.get("AutoParameters"):
            # Autotune's AutoParameters need the service to pick the ranges; forgeml does not do that.
            fail(len(parameter_ranges["AutoParameters"]), f"{path}.autoParameters",
                 "be empty (Autotune AutoParameters are not supported; give explicit ranges)")
        ranges: list[ParameterRange] = []
        seen: dict[str, str] = {}
        total = 0
        for key, kind in _LISTS:
            items = parameter_ranges.get(key)
            if items is None:
                continue
            list_path = f"{path}.{_camel(key)}"
            if not isinstance(items, list | tuple):
                fail(items, list_path, "be a list")
                continue
            total += len(items)
            if len(items) > MAX_RANGES:
                fail(f"{len(items)} items", list_path, f"have length less than or equal to {MAX_RANGES}")
            for index, item in enumerate(items, start=1):
                item_path = f"{list_path}.{index}"
                parsed = _parse_range(item, kind, item_path, fail)
                if parsed is None:
                    continue
                if parsed.name in seen:
                    fail(parsed.name, f"{item_path}.name",
                         f"be unique across all parameter ranges (also used at '{seen[parsed.name]}')")
                    continue
                seen[parsed.name] = item_path
                ranges.append(parsed)
        if total > MAX_RANGES:
            fail(f"{total} ranges", path,
                 f"have at most {MAX_RANGES} ranges in total across Integer, Continuous and Categorical parameter ranges")
        _raise(errors)
        return cls(ranges)

    # -- transforms ----------------------------------------------------------------------------------
    def encode(self, assignment: Mapping[str, str]) -> np.ndarray:
        """An assignment (strings) -> a point of [0, 1]^D. Numeric values outside their range map
        outside [0, 1] (callers clip or drop them); an unknown category raises KeyError, a missing
        name KeyError, an unparsable number ValueError."""
        out = np.zeros(self.dim)
        for r, s in zip(self.ranges, self.slices, strict=True):
            text = assignment[r.name]
            if r.kind == CATEGORICAL:
                try:
                    out[s.start + r.values.index(str(text))] = 1.0
                except ValueError:
                    raise KeyError(f"{r.name}: {text!r} is not one of its values") from None
            else:
                out[s.start] = r.unit_scalar(r.parse(str(text)))
        return out

    def decode(self, vector: Sequence[float] | np.ndarray) -> dict[str, str]:
        """A point of R^D (clipped to [0, 1]^D) -> an assignment of strings."""
        v = np.asarray(vector, dtype=float)
        if v.shape != (self.dim,):
            raise ValueError(f"expected a vector of length {self.dim}, got shape {v.shape}")
        out: dict[str, str] = {}
        for r, s in zip(self.ranges, self.slices, strict=True):
            if r.kind == CATEGORICAL:
                out[r.name] = r.values[int(np.argmax(v[s]))]
            else:
                out[r.name] = r.format(float(r.from_unit(v[s.start])))
        return out

    def snap(self, points: np.ndarray) -> np.ndarray:
        """Project encoded points onto what decoding can produce (integers rounded, one-hot
        categoricals, clipped), without going through strings. Vectorised over rows."""
        x = np.clip(np.array(points, dtype=float, ndmin=2), 0.0, 1.0)
        for r, s in zip(self.ranges, self.slices, strict=True):
            if r.kind == CATEGORICAL:
                block = x[:, s]
                hot = np.argmax(block, axis=1)
                block[:] = 0.0
                block[np.arange(len(x)), hot] = 1.0
                x[:, s] = block
            elif r.kind == INTEGER:
                x[:, s.start] = r.to_unit(r.from_unit(x[:, s.start]))
        return x

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, str]]:
        """``n`` independent assignments, each range drawn honouring its scaling."""
        columns = {r.name: r.sample_values(rng, n) for r in self.ranges}
        return [{name: columns[name][i] for name in self.names} for i in range(n)]

    def key(self, assignment: Mapping[str, str]) -> tuple[str, ...]:
        """A hashable identity of an assignment (numbers normalised, so '3' and '3.0' agree)."""
        out = []
        for r in self.ranges:
            text = str(assignment.get(r.name, ""))
            if r.is_numeric:
                with suppress(ValueError):
                    value = r.parse(text)
                    text = r.format(round(value) if r.kind == INTEGER else value)
            out.append(text)
        return tuple(out)

    # -- finite spaces -------------------------------------------------------------------------------
    def grid_size(self) -> int:
        """Number of combinations of the categorical values (the Grid strategy's job count).
        Only meaningful for spaces of categorical ranges only; raises ValueError otherwise."""
        if not self.categorical_only:
            raise ValueError("a grid needs categorical ranges only")
        return math.prod(len(r.values) for r in self.ranges) if self.ranges else 0

    def grid(self) -> Iterator[dict[str, str]]:
        """Every combination of the categorical values, in a stable order (the last range varies
        fastest, values in request order)."""
        if not self.categorical_only:
            raise ValueError("a grid needs categorical ranges only")
        if not self.ranges:
            return
        for combo in itertools.product(*(r.values for r in self.ranges)):
            yield dict(zip(self.names, combo, strict=True))

    def finite_size(self) -> int | None:
        """Number of distinct assignments when every range is integer or categorical, else None
        (a space without ranges has exactly one assignment, the empty one)."""
        size = 1
        for r in self.ranges:
            if r.kind == CATEGORICAL:
                size *= len(r.values)
            elif r.kind == INTEGER:
                size *= int(math.floor(r.max_value) - math.ceil(r.min_value) + 1)
            else:
                return None
        return size

    def enumerate(self) -> Iterator[dict[str, str]]:
        """Every assignment of a finite space (see :meth:`finite_size`), in a stable order."""
        if self.finite_size() is None:
            raise ValueError("the space has continuous ranges")
        choices = []
        for r in self.ranges:
            if r.kind == CATEGORICAL:
                choices.append(list(r.values))
            else:
                choices.append([str(k) for k in range(math.ceil(r.min_value), math.floor(r.max_value) + 1)])
        for combo in itertools.product(*choices):
            yield dict(zip(self.names, combo, strict=True))


# -- parsing helpers --------------------------------------------------------------------------------
def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _raise(errors: list[str]) -> None:
    if not errors:
        return
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(errors))


def _parse_range(item: Any, kind: str, path: str, fail: Any) -> ParameterRange | None:
    if not isinstance(item, Mapping):
        fail(item, path, "be a structure")
        return None
    allowed = ("Name", "Values") if kind == CATEGORICAL else ("Name", "MinValue", "MaxValue", "ScalingType")
    ok = True
    for key in item:
        if key not in allowed:
            fail(key, f"{path}.{_camel(str(key))}", f"be one of the members {', '.join(allowed)}")
            ok = False
    name = item.get("Name")
    if name is None:
        fail(None, f"{path}.name", "not be null")
        ok = False
    elif not isinstance(name, str):
        fail(name, f"{path}.name", "be a string")
        ok = False
    elif len(name) > MAX_NAME_LENGTH:
        fail(name, f"{path}.name", f"have length less than or equal to {MAX_NAME_LENGTH}")
        ok = False
    if kind == CATEGORICAL:
        values = _parse_values(item.get("Values"), f"{path}.values", fail)
        if values is None or not ok:
            return None
        return ParameterRange(name=str(name), kind=CATEGORICAL, values=values, scaling=LINEAR)

    scaling = item.get("ScalingType", AUTO)
    if scaling is None:
        scaling = AUTO
    if scaling not in SCALING_TYPES:
        fail(scaling, f"{path}.scalingType", f"satisfy enum value set: [{', '.join(SCALING_TYPES)}]")
        ok = False
    low = _parse_number(item.get("MinValue"), kind, f"{path}.minValue", fail)
    high = _parse_number(item.get("MaxValue"), kind, f"{path}.maxValue", fail)
    if low is None or high is None or not ok:
        return None
    # The issue says "a range with min >= max" is an error; the reference does not say whether
    # SageMaker accepts MinValue == MaxValue (UNVERIFIED), so forgeml rejects equality too: a range
    # of one value is a static hyperparameter.
    if low >= high:
        fail(item.get("MinValue"), f"{path}.minValue", f"be less than MaxValue ({item.get('MaxValue')})")
        return None
    if scaling == LOGARITHMIC and low <= 0:
        fail(item.get("MinValue"), f"{path}.minValue",
             "be greater than 0 when ScalingType is Logarithmic (the range must lie entirely above 0)")
        return None
    if scaling == REVERSE_LOGARITHMIC:
        if kind == INTEGER:
            fail(scaling, f"{path}.scalingType",
                 "not be ReverseLogarithmic for an integer range (continuous ranges only)")
            return None
        bad = False
        if not 0 <= low < 1:
            fail(item.get("MinValue"), f"{path}.minValue",
                 "be in [0, 1) when ScalingType is ReverseLogarithmic (0 <= MinValue < 1)")
            bad = True
        if not 0 <= high < 1:
            fail(item.get("MaxValue"), f"{path}.maxValue",
                 "be in [0, 1) when ScalingType is ReverseLogarithmic (MaxValue < 1)")
            bad = True
        if bad:
            return None
    return ParameterRange(name=str(name), kind=kind, min_value=low, max_value=high, scaling=str(scaling))


def _parse_number(raw: Any, kind: str, path: str, fail: Any) -> float | None:
    if raw is None:
        fail(None, path, "not be null")
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        fail(raw, path, "be a string holding a number")
        return None
    try:
        value = float(raw)
    except ValueError:
        fail(raw, path, "be a number" if kind == CONTINUOUS else "be an integer")
        return None
    if not math.isfinite(value):
        fail(raw, path, "be a finite number")
        return None
    if kind == INTEGER and value != math.floor(value):
        fail(raw, path, "be an integer")
        return None
    return value


def _parse_values(raw: Any, path: str, fail: Any) -> tuple[str, ...] | None:
    if raw is None:
        fail(None, path, "not be null")
        return None
    if not isinstance(raw, list | tuple):
        fail(raw, path, "be a list of strings")
        return None
    if not raw:
        fail("[]", path, "have length greater than or equal to 1")
        return None
    if len(raw) > MAX_CATEGORICAL_VALUES:
        fail(f"{len(raw)} values", path, f"have length less than or equal to {MAX_CATEGORICAL_VALUES}")
        return None
    values: list[str] = []
    ok = True
    for index, value in enumerate(raw, start=1):
        if not isinstance(value, str):
            fail(value, f"{path}.{index}", "be a string")
            ok = False
        elif len(value) > MAX_VALUE_LENGTH:
            fail(value, f"{path}.{index}", f"have length less than or equal to {MAX_VALUE_LENGTH}")
            ok = False
        elif value in values:
            # UNVERIFIED whether SageMaker rejects repeated values; a repeat would make Grid run the
            # same combination twice and weight Random's draws, so forgeml rejects it.
            fail(value, f"{path}.{index}", "be unique within the range's Values")
            ok = False
        else:
            values.append(value)
    return tuple(values) if ok else None
