"""Request validation with AWS's error text.

AWS reports every broken rule of a request at once:
``2 validation errors detected: Value '0' at 'resourceConfig.instanceCount' failed to satisfy
constraint: Member must have value greater than or equal to 1; Value ...``. ``Checker`` collects
errors in that shape and raises one ValidationException at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeml.errors import ValidationException


def member_path(path: str) -> str:
    """``ResourceConfig.InstanceCount`` -> ``resourceConfig.instanceCount`` (AWS's rendering)."""
    return ".".join(part[:1].lower() + part[1:] if part else part for part in path.split("."))


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


class Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value: Any, path: str, rule: str) -> None:
        self.errors.append(f"Value '{_show(value)}' at '{member_path(path)}' failed to satisfy constraint: Member must {rule}")

    def required(self, value: Any, path: str) -> bool:
        if value is None:
            self.fail(None, path, "not be null")
            return False
        return True

    def string(
        self,
        value: Any,
        path: str,
        *,
        required: bool = False,
        min_len: int | None = None,
        max_len: int | None = None,
        pattern: str | None = None,
    ) -> bool:
        if value is None:
            return self.required(value, path) if required else True
        if not isinstance(value, str):
            self.fail(value, path, "be a string")
            return False
        ok = True
        if min_len is not None and len(value) < min_len:
            self.fail(value, path, f"have length greater than or equal to {min_len}")
            ok = False
        if max_len is not None and len(value) > max_len:
            self.fail(value, path, f"have length less than or equal to {max_len}")
            ok = False
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(value, path, f"satisfy regular expression pattern: {pattern}")
            ok = False
        return ok

    def integer(
        self,
        value: Any,
        path: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> bool:
        if value is None:
            return self.required(value, path) if required else True
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(value, path, "be an integer")
            return False
        if minimum is not None and value < minimum:
            self.fail(value, path, f"have value greater than or equal to {minimum}")
            return False
        if maximum is not None and value > maximum:
            self.fail(value, path, f"have value less than or equal to {maximum}")
            return False
        return True

    def boolean(self, value: Any, path: str) -> bool:
        if value is not None and not isinstance(value, bool):
            self.fail(value, path, "be a boolean")
            return False
        return True

    def enum(self, value: Any, path: str, allowed: Sequence[str], *, required: bool = False) -> bool:
        if value is None:
            return self.required(value, path) if required else True
        if value not in allowed:
            self.fail(value, path, f"satisfy enum value set: [{', '.join(allowed)}]")
            return False
        return True

    def items(
        self, value: Any, path: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[Any]:
        if value is None:
            if required:
                self.required(value, path)
            return []
        if not isinstance(value, list):
            self.fail(value, path, "be a list")
            return []
        if len(value) < min_items:
            self.fail(value, path, f"have length greater than or equal to {min_items}")
        if max_items is not None and len(value) > max_items:
            self.fail(value, path, f"have length less than or equal to {max_items}")
        return value

    def mapping(
        self,
        value: Any,
        path: str,
        *,
        max_entries: int,
        key_len: int,
        value_len: int,
        key_pattern: str | None = None,
    ) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(value, path, "be a map")
            return {}
        if len(value) > max_entries:
            self.fail(f"{len(value)} entries", path, f"have length less than or equal to {max_entries}")
        for key, item in value.items():
            self.string(key, f"{path}.key", max_len=key_len, pattern=key_pattern)
            if not isinstance(item, str):
                self.fail(item, f"{path}.{key}", "be a string")
            elif len(item) > value_len:
                self.fail(item, f"{path}.{key}", f"have length less than or equal to {value_len}")
        return value

    def structure(self, value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
        if value is None:
            if required:
                self.required(value, path)
            return {}
        if not isinstance(value, dict):
            self.fail(value, path, "be a structure")
            return {}
        return value

    def unknown_members(self, value: Mapping[str, Any], path: str, known: Iterable[str]) -> None:
        extra = sorted(set(value) - set(known))
        for name in extra:
            self.errors.append(f"Unknown parameter in {path or 'input'}: \"{name}\", must be one of: {', '.join(sorted(known))}")

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(self.errors))
