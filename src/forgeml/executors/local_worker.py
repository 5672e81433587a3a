"""Entry point of a local job runner: ``python -m forgeml.executors.local_worker <job-name>``."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

from forgeml.config import Config
from forgeml.executors.base import TUNING
from forgeml.executors.local import LOCK_FD_VARIABLE, job_slot
from forgeml.runtime.runner import JobRunner
from forgeml.service.platform import Platform


def main(kind: str, name: str) -> int:
    lock_fd = os.environ.pop(LOCK_FD_VARIABLE, None)
    if lock_fd is not None:
        os.set_inheritable(int(lock_fd), False)  # the job's own processes must not keep it alive
    config = Config.from_env()
    platform = Platform.get(config)
    if kind == TUNING:
        from forgeml.tuning.controller import TuningController

        controller = TuningController(platform, name)
        signal.signal(signal.SIGUSR1, lambda _s, _f: controller.wake())
        signal.signal(signal.SIGTERM, lambda _s, _f: controller.wake())
        controller.run()
        return 0
    runner = JobRunner(platform, name)

    def on_signal(_signum: int, _frame: object) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    slot: Callable[[Callable[[], bool]], AbstractContextManager[bool]] = partial(
        job_slot, config.locks_dir, config.max_concurrent_jobs
    )
    runner.run(slot)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
