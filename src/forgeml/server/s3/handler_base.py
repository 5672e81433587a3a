"""What every group of S3 handlers shares: the platform, its object store and account, and a way to
run file work in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anyio import to_thread

if TYPE_CHECKING:
    from forgeml.server.s3.store import LocalObjectStore
    from forgeml.service.platform import Platform


class S3Handlers:
    """The state S3App gives its handler groups (set in ``S3App.__init__``)."""

    platform: Platform
    store: LocalObjectStore
    account_id: str

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await to_thread.run_sync(function, *args)
