"""The JSONPath subset batch transform's InputFilter and OutputFilter accept.

SageMaker documents a small set of operators, and this module implements exactly those:

* ``$``: the whole record;
* ``.name`` and ``['name']``: an object's member;
* ``['a','b']``: several members, kept as an object with those keys (``$['id','SageMakerOutput']``);
* ``[i]``: one array element (negative indexes count from the end);
* ``[i,j]``, ``[a:b]``, ``[a:]``, ``[:b]`` and unions of them (``$[0,5:]``): an array of the selected
  elements, in the order the expression names them;
* ``*`` (``.*`` or ``[*]``): every element or member value, as an array.

Once a step selects several values (a slice, a union, a wildcard), later steps apply to each of them,
as in JSONPath. Selecting a member or an index that does not exist is an error (SageMaker fails the
record), while slices clamp to the array's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROOT = "$"


class JsonPathError(ValueError):
    """An expression outside the subset, or one that does not fit the record it is applied to."""


@dataclass(frozen=True)
class Member:
    name: str


@dataclass(frozen=True)
class Members:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Elements:
    """Array selection: ints and slices; a lone int selects one element, anything else an array."""

    items: tuple[int | slice, ...]

    @property
    def single(self) -> bool:
        return len(self.items) == 1 and isinstance(self.items[0], int)


@dataclass(frozen=True)
class Wildcard:
    """``*`` / ``[*]``: every member of an object or element of an array."""


Step = Member | Members | Elements | Wildcard


@dataclass(frozen=True)
class JsonPath:
    """A parsed expression; ``apply`` selects from a record's JSON value."""

    text: str
    steps: tuple[Step, ...]

    @property
    def is_root(self) -> bool:
        """``$``: the record unchanged, so callers can skip parsing it at all."""
        return not self.steps

    def apply(self, value: Any) -> Any:
        current = value
        many = False
        for step in self.steps:
            if many:
                current = [_select(item, step, self.text)[0] for item in current]
                continue
            current, widened = _select(current, step, self.text)
            many = many or widened
        return current


def _select(value: Any, step: Step, text: str) -> tuple[Any, bool]:
    """The value a step selects, and whether it selected several (an array of matches)."""
    if isinstance(step, Member):
        return _member(value, step.name, text), False
    if isinstance(step, Members):
        return {name: _member(value, name, text) for name in step.names}, False
    if isinstance(step, Wildcard):
        if isinstance(value, dict):
            return list(value.values()), True
        if isinstance(value, list):
            return list(value), True
        raise JsonPathError(f"'{text}': '*' needs an array or an object, found {_kind(value)}")
    if not isinstance(value, list):
        raise JsonPathError(f"'{text}': an index needs an array, found {_kind(value)}")
    if step.single:
        index = step.items[0]
        assert isinstance(index, int)
        return _element(value, index, text), False
    selected: list[Any] = []
    for item in step.items:
        if isinstance(item, slice):
            selected.extend(value[item])
        else:
            selected.append(_element(value, item, text))
    return selected, True


def _member(value: Any, name: str, text: str) -> Any:
    if not isinstance(value, dict):
        raise JsonPathError(f"'{text}': member '{name}' needs an object, found {_kind(value)}")
    if name not in value:
        raise JsonPathError(f"'{text}': the record has no member '{name}'")
    return value[name]


def _element(value: list[Any], index: int, text: str) -> Any:
    if not -len(value) <= index < len(value):
        raise JsonPathError(f"'{text}': index {index} is outside the array's {len(value)} elements")
    return value[index]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) and not isinstance(value, bool) else "a boolean"


# -- parsing ---------------------------------------------------------------------------------------


def parse(text: str) -> JsonPath:
    """Parse an expression; JsonPathError says what is wrong and where (0-based character)."""
    if not isinstance(text, str):
        raise JsonPathError("the expression must be a string")
    parser = _Parser(text)
    return JsonPath(text, parser.parse())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> JsonPathError:
        return JsonPathError(f"{what} at character {self.pos} of '{self.text}'")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.peek() != char:
            raise self.fail(f"expected '{char}'")
        self.pos += 1

    def parse(self) -> tuple[Step, ...]:
        self.skip_spaces()
        if self.peek() != ROOT:
            raise self.fail("an expression starts with '$'")
        self.pos += 1
        steps: list[Step] = []
        while True:
            self.skip_spaces()
            char = self.peek()
            if not char:
                return tuple(steps)
            if char == ".":
                steps.append(self.dotted())
            elif char == "[":
                steps.append(self.bracketed())
            else:
                raise self.fail(f"unexpected '{char}'")

    def dotted(self) -> Step:
        self.pos += 1
        if self.peek() == ".":
            raise self.fail("recursive descent '..' is not supported")
        if self.peek() == "*":
            self.pos += 1
            return Wildcard()
        start = self.pos
        while self.peek() and self.peek() not in ".[] \t'\"":
            self.pos += 1
        if self.pos == start:
            raise self.fail("expected a member name after '.'")
        return Member(self.text[start : self.pos])

    def bracketed(self) -> Step:
        self.pos += 1
        self.skip_spaces()
        char = self.peek()
        if char == "*":
            self.pos += 1
            self.expect("]")
            return Wildcard()
        if char in ("'", '"'):
            names = [self.quoted()]
            while self.comma():
                names.append(self.quoted())
            self.expect("]")
            return Member(names[0]) if len(names) == 1 else Members(tuple(names))
        items = [self.index_item()]
        while self.comma():
            items.append(self.index_item())
        self.expect("]")
        return Elements(tuple(items))

    def comma(self) -> bool:
        self.skip_spaces()
        if self.peek() == ",":
            self.pos += 1
            self.skip_spaces()
            return True
        return False

    def quoted(self) -> str:
        self.skip_spaces()
        quote = self.peek()
        if quote not in ("'", '"'):
            raise self.fail("expected a quoted member name")
        self.pos += 1
        chars: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.fail("unterminated quoted name")
            self.pos += 1
            if char == quote:
                return "".join(chars)
            if char == "\\":
                escaped = self.peek()
                if not escaped:
                    raise self.fail("unterminated quoted name")
                self.pos += 1
                chars.append(escaped)
            else:
                chars.append(char)

    def integer(self) -> int | None:
        self.skip_spaces()
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        while self.peek().isdigit():
            self.pos += 1
        digits = self.text[start : self.pos]
        if digits in ("", "-"):
            self.pos = start
            return None
        return int(digits)

    def index_item(self) -> int | slice:
        first = self.integer()
        self.skip_spaces()
        if self.peek() != ":":
            if first is None:
                raise self.fail("expected an index, a slice, a quoted name or '*'")
            return first
        self.pos += 1
        second = self.integer()
        self.skip_spaces()
        step: int | None = None
        if self.peek() == ":":
            self.pos += 1
            step = self.integer()
            if step == 0:
                raise self.fail("a slice step cannot be 0")
        return slice(first, second, step)

