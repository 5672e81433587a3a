"""Executors: where job runners run (local processes by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgeml.executors.base import Executor

if TYPE_CHECKING:
    from forgeml.service.platform import Platform


def create_executor(platform: Platform) -> Executor:
    kind = platform.config.executor
    if kind == "local":
        from forgeml.executors.local import LocalExecutor

        return LocalExecutor(platform)
    raise ValueError(f"FORGEML_EXECUTOR={kind!r} is not a known executor (available: local)")


__all__ = ["Executor", "create_executor"]
