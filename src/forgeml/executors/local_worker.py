"""Entry point of a local runner: ``python -m forgeml.executors.local_worker <kind> <name>``.

SIGUSR1 tells a runner to look at the store now (a stop, an update, a delete was requested);
SIGTERM asks it to stop.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

from forgeml.config import Config
from forgeml.executors.base import ENDPOINT, TRAINING, TRANSFORM, TUNING
from forgeml.executors.local import LOCK_FD_VARIABLE, job_slot
from forgeml.service.platform import Platform

Slot = Callable[[Callable[[], bool]], AbstractContextManager[bool]]


def _on_signals(wake: Callable[[], None], stop: Callable[[], None]) -> None:
    signal.signal(signal.SIGUSR1, lambda _s, _f: wake())
    signal.signal(signal.SIGTERM, lambda _s, _f: stop())


def _run_training(platform: Platform, name: str, slot: Slot) -> None:
    from forgeml.runtime.runner import JobRunner

    runner = JobRunner(platform, name)
    _on_signals(runner.stop_event.set, runner.stop_event.set)
    runner.run(slot)


def _run_tuning(platform: Platform, name: str, slot: Slot) -> None:
    from forgeml.tuning.controller import TuningController

    controller = TuningController(platform, name)
    _on_signals(controller.wake, controller.wake)
    controller.run()


def _run_endpoint(platform: Platform, name: str, slot: Slot) -> None:
    from forgeml.hosting.host import EndpointHost

    host = EndpointHost(platform, name)
    _on_signals(host.wake, host.terminate)
    host.run()


def _run_transform(platform: Platform, name: str, slot: Slot) -> None:
    from forgeml.transform.runner import TransformRunner

    runner = TransformRunner(platform, name)
    _on_signals(runner.stop_event.set, runner.stop_event.set)
    runner.run(slot)


RUNNERS = {TRAINING: _run_training, TUNING: _run_tuning, ENDPOINT: _run_endpoint, TRANSFORM: _run_transform}


def main(kind: str, name: str) -> int:
    lock_fd = os.environ.pop(LOCK_FD_VARIABLE, None)
    if lock_fd is not None:
        os.set_inheritable(int(lock_fd), False)  # the job's own processes must not keep it alive
    config = Config.from_env()
    slot: Slot = partial(job_slot, config.locks_dir, config.max_concurrent_jobs)
    RUNNERS[kind](Platform.get(config), name, slot)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
