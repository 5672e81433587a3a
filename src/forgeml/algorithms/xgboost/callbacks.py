"""Training callbacks: the per-round evaluation line, checkpoints, and save-on-SIGTERM.

The evaluation line is what SageMaker's metric regexes read, so its shape is fixed:
``[<round>]#011<data>-<metric>:<value .5f>`` per metric, ``train`` before ``validation``
(see ``metrics.py`` for why ``#011`` and not a TAB).
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import xgboost as xgb
from xgboost.callback import TrainingCallback

from forgeml.algorithms.logging import AlgorithmLogger

CHECKPOINT_NAME = "xgboost-checkpoint"
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_NAME}\.([0-9]+)$")
TAB = "#011"


def eval_line(round_number: int, scores: list[tuple[str, str, float]]) -> str:
    """``[3]#011train-rmse:1.23457#011validation-rmse:2.34568``."""
    return TAB.join([f"[{round_number}]", *(f"{data}-{metric}:{value:.5f}" for data, metric, value in scores)])


class EvalLinePrinter(TrainingCallback):
    """Prints the container's evaluation line after every round (``offset``: rounds resumed)."""

    def __init__(self, stream: TextIO, offset: int = 0) -> None:
        super().__init__()
        self.stream = stream
        self.offset = offset

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if evals_log:
            scores = [
                (data, metric, float(history[-1]))
                for data, metrics in evals_log.items()
                for metric, history in metrics.items()
            ]
            self.stream.write(eval_line(epoch + self.offset, scores) + "\n")
            self.stream.flush()
        return False


def find_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / name) for name in os.listdir(folder) if (m := _CHECKPOINT.match(name))]
    return sorted(found)


def load_checkpoint(folder: Path | None, log: AlgorithmLogger) -> tuple[xgb.Booster | None, int]:
    """The newest readable checkpoint and the rounds it holds (``xgboost-checkpoint.<i>`` = i+1)."""
    if folder is None:
        return None, 0
    for iteration, path in reversed(find_checkpoints(folder)):
        try:
            booster = xgb.Booster(model_file=bytearray(path.read_bytes()))
        except xgb.core.XGBoostError:
            log.warning(f"Skipping unreadable checkpoint {path.name}")
            continue
        log.info(f"Checkpoint loaded from {path}")
        log.info(f"Resuming from iteration {iteration + 1}")
        return booster, iteration + 1
    return None, 0


class CheckpointSaver(TrainingCallback):
    """Writes ``xgboost-checkpoint.<round>`` after every round and keeps the newest ``keep``."""

    def __init__(self, folder: Path, start: int = 0, keep: int = 5) -> None:
        super().__init__()
        self.folder = folder
        self.start = start
        self.keep = keep
        folder.mkdir(parents=True, exist_ok=True)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        iteration = self.start + epoch
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".sagemaker-ignore", delete=False) as handle:
            handle.write(model.save_raw("ubj"))
        os.replace(handle.name, self.folder / f"{CHECKPOINT_NAME}.{iteration}")
        for old, path in find_checkpoints(self.folder):
            if old <= iteration - self.keep:
                path.unlink(missing_ok=True)
        return False


class StopOnSigterm(TrainingCallback):
    """``save_model_on_termination=true``: SIGTERM ends training after the current round.

    The job then saves the model trained so far and exits normally, as the container does (it
    moves its latest checkpoint into the model folder and exits 0). Python runs the handler
    between rounds, so the booster is always whole when training stops.
    """

    def __init__(self, log: AlgorithmLogger) -> None:
        super().__init__()
        self.log = log
        self.terminated = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.terminated = True

    def before_training(self, model: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        else:
            self.log.warning("save_model_on_termination=true needs the job's main thread; SIGTERM is not intercepted")
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if self.terminated:
            self.log.info("Received SIGTERM: stopping training and saving the model trained so far")
        return self.terminated

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
