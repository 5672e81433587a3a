"""A job's folder, laid out like SageMaker's ``/opt/ml`` (one per host: ``algo-1``, ``algo-2``...)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HostLayout:
    """``root`` plays the role of ``/opt/ml`` for one host of one job."""

    root: Path
    host: str

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def intermediate_dir(self) -> Path:
        return self.root / "output" / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    def map_container_path(self, path: str) -> Path:
        """A path a job configuration names under ``/opt/ml`` lives under this host's root here."""
        if path == "/opt/ml" or path.startswith("/opt/ml/"):
            return self.root / path[len("/opt/ml/") :] if path != "/opt/ml" else self.root
        return Path(path)

    def create(self) -> None:
        for folder in (self.config_dir, self.data_dir, self.model_dir, self.output_data_dir,
                       self.intermediate_dir, self.checkpoint_dir, self.code_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, name: str, payload: Any) -> None:
        (self.config_dir / name).write_text(json.dumps(payload, indent=None))

    def read_config(self, name: str) -> Any:
        path = self.config_dir / name
        return json.loads(path.read_text()) if path.exists() else {}


def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, count + 1)]
