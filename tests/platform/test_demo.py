"""The README's main command runs the flagship flow end to end: train, tune, deploy, invoke, transform."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_quick_demo_runs_every_step(forgeml_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from forgeml.cli.demo import run_demo

    assert run_demo(quick=True) == 0
    out = capsys.readouterr().out
    for step in ("1. Built-in Linear Learner", "2. Script-mode training job", "3. Hyperparameter tuning job",
                 "4. Deploy the best model", "5. Batch transform"):
        assert step in out
    assert re.search(r"600 rows in one request -> accuracy 0\.[6-9]\d+", out)
    captured = re.search(r"endpoint deleted; (\d+) captured request/response records", out)
    assert captured is not None and int(captured.group(1)) == 202  # 1 + 200 + 1 requests, all sampled
    assert re.search(r"Completed in [\d.]+ s: 600 predictions in s3://\S+/validation\.csv\.out, accuracy 0\.[6-9]",
                     out)
