"""The CLI: forgeml deploy (from a training job) and forgeml endpoints list/describe/invoke/update/delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from forgeml.cli.main import main


def test_deploy_a_training_job_invoke_update_and_delete(platform: Any, make_model: Callable[..., str],
                                                        wait_for: Callable[..., Any], session: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from forgeml.sdk.amazon_estimators import LinearLearner

    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.float32)
    estimator = LinearLearner(role="arn:aws:iam::000000000000:role/forgeml", instance_count=1,
                              instance_type="ml.m5.large", predictor_type="binary_classifier", epochs=2,
                              sagemaker_session=session)
    estimator.fit(estimator.record_set(features, labels), logs=False)
    job = estimator.latest_training_job.name

    assert main(["deploy", "--training-job", job, "--endpoint-name", "cli-ep"]) == 0
    out = capsys.readouterr().out
    assert "-" in out and "!" in out and "cli-ep is InService" in out

    assert main(["endpoints", "invoke", "cli-ep", "--body", "1.5,0,0,0", "--accept", "application/json"]) == 0
    answer = capsys.readouterr().out
    assert "AllTraffic answered application/json" in answer
    assert json.loads(answer.splitlines()[-1])["predictions"][0]["predicted_label"] == 1

    assert main(["endpoints", "list"]) == 0
    assert "cli-ep" in capsys.readouterr().out
    assert main(["endpoints", "update", "cli-ep", "--instance-count", "AllTraffic=2"]) == 0
    assert "cli-ep: InService with cli-ep" in capsys.readouterr().out
    assert main(["endpoints", "describe", "cli-ep"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    assert main(["endpoints", "delete", "cli-ep"]) == 0
    wait_for(lambda: not platform.endpoints.exists("cli-ep"), 20, "the delete")
    assert main(["endpoints", "describe", "cli-ep"]) == 2
    assert "Could not find endpoint" in capsys.readouterr().out
