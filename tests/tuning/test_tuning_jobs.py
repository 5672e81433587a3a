"""Tuning jobs end to end: strategies through the service, early stopping, warm start, stop, analytics."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from forgeml import Estimator, ResourceNotFound, Session, ValidationException
from forgeml.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
    WarmStartConfig,
    WarmStartTypes,
)

# A script whose "loss" is known: (offset - 0.3)^2 + penalty by kind, printed once per epoch.
QUADRATIC = """
    import argparse, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--offset", type=float, default=0.5)
    parser.add_argument("--kind", type=str, default="a")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    loss = (args.offset - 0.3) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[args.kind]
    for epoch in range(args.epochs):
        print(f"epoch={epoch} loss={loss + 1.0 / (epoch + 1):.6f};", flush=True)
        time.sleep(args.sleep)
    print(f"final-score: {loss:.6f};")
"""
METRICS = [{"Name": "loss", "Regex": r"loss=([0-9.]+);"}, {"Name": "final-score", "Regex": r"final-score: ([0-9.]+);"}]


@pytest.fixture
def estimator(session: Session, write_script) -> Estimator:  # type: ignore[no-untyped-def]
    source = write_script("train.py", QUADRATIC)
    return Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session,
                     hyperparameters={"epochs": 3}, metric_definitions=METRICS)


def tuner_for(estimator: Estimator, **kwargs: Any) -> HyperparameterTuner:
    ranges = kwargs.pop("ranges", {"offset": ContinuousParameter(0.0, 1.0), "kind": CategoricalParameter(["a", "b", "c"])})
    defaults: dict[str, Any] = {"objective_metric_name": "final-score", "objective_type": "Minimize",
                                "max_jobs": 6, "max_parallel_jobs": 2, "strategy": "Random", "random_seed": 1}
    defaults.update(kwargs)
    return HyperparameterTuner(estimator, hyperparameter_ranges=ranges, **defaults)


def test_script_mode_tuning_with_a_regex_objective(session: Session, estimator: Estimator) -> None:
    tuner = tuner_for(estimator, strategy="Bayesian", max_jobs=8)
    out = io.StringIO()
    tuner.fit(wait=False)
    description = tuner.wait(stream=out)
    name = description["HyperParameterTuningJobName"]
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert description["TrainingJobStatusCounters"]["Completed"] == 8
    assert description["ObjectiveStatusCounters"] == {"Succeeded": 8, "Pending": 0, "Failed": 0}
    best = description["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "final-score"
    assert set(best["TunedHyperParameters"]) == {"offset", "kind"}
    assert best["TrainingJobName"].startswith(f"{name}-")
    assert len(best["TrainingJobName"].split("-")[-1]) == 8
    assert "Completed: 8/8 training jobs done" in out.getvalue()

    assert set(tuner.analytics().tuning_ranges) == {"offset", "kind"}
    frame = tuner.analytics().dataframe()
    assert list(frame.columns[:2]) == ["offset", "kind"] or set(frame.columns[:2]) == {"offset", "kind"}
    assert {"TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingStartTime", "TrainingEndTime",
            "TrainingElapsedTimeSeconds"} <= set(frame.columns)
    assert len(frame) == 8
    assert frame["FinalObjectiveValue"].min() == pytest.approx(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])

    # each trial got the static value, its tuned values (JSON-encoded categorical) and the objective name
    trial = session.describe_training_job(best["TrainingJobName"])
    assert trial["HyperParameters"]["_tuning_objective_metric"] == "final-score"
    assert trial["HyperParameters"]["kind"] in ('"a"', '"b"', '"c"')
    assert trial["TuningJobArn"].endswith(f"hyper-parameter-tuning-job/{name}")

    client = session.sagemaker_client
    listed = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending", MaxResults=3)
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in listed["TrainingJobSummaries"]]
    assert values == sorted(values) and values[0] == best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert "NextToken" in listed
    assert tuner.best_estimator().hyperparameters().get("_tuning_objective_metric") is None


def test_grid_covers_every_combination_once(session: Session, estimator: Estimator) -> None:
    ranges = {"kind": CategoricalParameter(["a", "b", "c"]), "offset": CategoricalParameter(["0.1", "0.3"])}
    tuner = tuner_for(estimator, strategy="Grid", max_jobs=None, ranges=ranges)
    tuner.fit(wait=True)
    frame = tuner.analytics().dataframe()
    combos = sorted(zip(frame["kind"], frame["offset"], strict=True))
    # script-mode categorical values travel JSON-encoded, as sagemaker's SDK sends them
    assert combos == sorted((f'"{k}"', f'"{x}"') for k in "abc" for x in ("0.1", "0.3"))
    assert tuner.describe()["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6


def test_early_stopping_stops_clearly_bad_trials(session: Session, estimator: Estimator) -> None:
    estimator.set_hyperparameters(epochs=8, sleep=0.15)
    # Grid runs the combinations in a fixed order, one at a time: the four good "a" trials finish
    # first, so each "c" trial meets enough finished trials to be judged, whatever the machine's load.
    tuner = tuner_for(estimator, objective_metric_name="loss", early_stopping_type="Auto", strategy="Grid",
                      max_jobs=None, max_parallel_jobs=1,
                      ranges={"kind": CategoricalParameter(["a", "c"]),
                              "offset": CategoricalParameter(["0.29", "0.30", "0.31", "0.32"])})
    tuner.fit(wait=True)
    description = tuner.describe()
    frame = tuner.analytics().dataframe()
    stopped = frame[frame["TrainingJobStatus"] == "Stopped"]
    assert description["TrainingJobStatusCounters"]["Stopped"] >= 1
    assert set(stopped["kind"]) == {'"c"'}  # only the clearly worse kind is ever stopped
    assert (frame[frame["kind"] == '"a"']["TrainingJobStatus"] == "Completed").all()
    # a stopped trial still reports its last objective value
    assert stopped["FinalObjectiveValue"].notna().all()


def test_warm_start_from_a_parent(session: Session, estimator: Estimator) -> None:
    parent = tuner_for(estimator, max_jobs=4)
    parent.fit(wait=True)
    child = tuner_for(estimator, max_jobs=2, strategy="Bayesian",
                      warm_start_config=WarmStartConfig(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM,
                                                        parents={parent.latest_tuning_job}))
    child.fit(wait=True)
    description = child.describe()
    assert description["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    parent_best = parent.describe()["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    overall = description["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert overall <= parent_best

    with pytest.raises(ValidationException, match="name an existing hyperparameter tuning job"):
        tuner_for(estimator, warm_start_config=WarmStartConfig("TransferLearning", parents={"no-such-parent"})).fit()
    other_ranges = {"offset": ContinuousParameter(0.0, 1.0)}
    with pytest.raises(ValidationException, match="same hyperparameters"):
        tuner_for(estimator, ranges=other_ranges, warm_start_config=WarmStartConfig(
            "IdenticalDataAndAlgorithm", parents={parent.latest_tuning_job})).fit()


def test_target_objective_completes_the_tuning_job_early(session: Session, estimator: Estimator) -> None:
    tuner = tuner_for(estimator, max_jobs=20, max_parallel_jobs=1,
                      completion_criteria_config={"TargetObjectiveMetricValue": 10.0})
    tuner.fit(wait=True)
    description = tuner.describe()
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert sum(description["TrainingJobStatusCounters"].values()) < 20


def test_stop_stops_running_trials(session: Session, estimator: Estimator) -> None:
    estimator.set_hyperparameters(epochs=100, sleep=0.2)
    tuner = tuner_for(estimator, max_jobs=4, max_parallel_jobs=2)
    tuner.fit(wait=False)
    deadline = time.time() + 30
    while tuner.describe()["TrainingJobStatusCounters"]["InProgress"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    tuner.stop_tuning_job()
    description = tuner.wait(stream=io.StringIO())
    assert description["HyperParameterTuningJobStatus"] == "Stopped"
    assert description["TrainingJobStatusCounters"]["InProgress"] == 0
    assert description["TrainingJobStatusCounters"]["Stopped"] >= 1


def test_all_trials_failing_fails_the_tuning_job(session: Session, write_script) -> None:
    source = write_script("broken.py", "raise SystemExit('no data here')\n")
    estimator = Estimator(entry_point="broken.py", source_dir=str(source), sagemaker_session=session,
                          metric_definitions=METRICS)
    tuner = tuner_for(estimator, max_jobs=2)
    tuner.fit(wait=True)
    description = tuner.describe()
    assert description["HyperParameterTuningJobStatus"] == "Failed"
    assert description["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert "no data here" in description["FailureReason"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ranges": {"offset": ContinuousParameter(1.0, 0.5)}}, "minValue"),
        ({"ranges": {"offset": ContinuousParameter(0.0, 1.0, "Logarithmic")}}, "Logarithmic"),
        ({"ranges": {"offset": ContinuousParameter(0.5, 1.5, "ReverseLogarithmic")}}, "ReverseLogarithmic"),
        ({"strategy": "Grid", "max_jobs": None}, "Grid"),
        ({"objective_metric_name": "validation:auc"}, "be a metric the training jobs emit"),
        ({"max_jobs": 2, "max_parallel_jobs": 3}, "MaxNumberOfTrainingJobs"),
    ],
)
def test_bad_tuning_requests(session: Session, estimator: Estimator, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException, match=message):
        tuner_for(estimator, **kwargs).fit(wait=False)
    assert session.sagemaker_client.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []


def test_a_hyperparameter_both_static_and_tuned_is_refused(session: Session, estimator: Estimator) -> None:
    request = tuner_for(estimator, ranges={"epochs": IntegerParameter(1, 5)}).tuning_request()
    request["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "3"
    with pytest.raises(ValidationException, match="also tuned"):
        session.sagemaker_client.create_hyper_parameter_tuning_job(**request)


def test_charts_and_cli(session: Session, estimator: Estimator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from forgeml.cli.main import main

    tuner = tuner_for(estimator, max_jobs=3)
    tuner.fit(wait=True)
    name = tuner.latest_tuning_job
    assert name is not None
    html = tuner.analytics().plot(tmp_path / "objective.html")
    text = html.read_text()
    assert text.count("<circle") == 3 and "<polyline" in text
    assert main(["tuning", "list"]) == 0
    assert name[:20] in capsys.readouterr().out
    assert main(["tuning", "jobs", name, "--ascending"]) == 0
    assert "FinalObjectiveValue" in capsys.readouterr().out
    assert main(["tuning", "plot", name, "--output-prefix", str(tmp_path / "chart")]) == 0
    assert (tmp_path / "chart-objective.html").exists() and (tmp_path / "chart-hyperparameters.html").exists()
    pytest.importorskip("matplotlib")
    png = tuner.analytics().plot(tmp_path / "params.png", kind="hyperparameters")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["tuning", "describe", "missing-tuning"]) == 2
    with pytest.raises(ResourceNotFound):
        session.platform.tuning_jobs.describe_hyper_parameter_tuning_job("missing-tuning")


def test_hyperband_runs_trials_at_max_resource_and_stops_bad_ones(session: Session, estimator: Estimator) -> None:
    estimator.set_hyperparameters(epochs=9, sleep=0.05)
    tuner = tuner_for(estimator, strategy="Hyperband", objective_metric_name="loss", max_jobs=9, max_parallel_jobs=3,
                      strategy_config={"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}})
    tuner.fit(wait=True)
    description = tuner.describe()
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    trials = session.platform.tuning_jobs.trial_summaries(tuner.latest_tuning_job)  # type: ignore[arg-type]
    for trial in trials:
        assert session.describe_training_job(trial["TrainingJobName"])["HyperParameters"]["epochs"] == "9"
    counters = description["TrainingJobStatusCounters"]
    assert counters["Completed"] + counters["Stopped"] == 9
    assert counters["Stopped"] >= 1  # the worst trials do not get the full budget

    with pytest.raises(ValidationException, match="Hyperband"):
        tuner_for(estimator, strategy="Hyperband", early_stopping_type="Auto").fit(wait=False)


def test_several_training_job_definitions_share_the_budget(session: Session, estimator: Estimator) -> None:
    request = tuner_for(estimator, max_jobs=4).tuning_request()
    config = request["HyperParameterTuningJobConfig"]
    objective = config.pop("HyperParameterTuningJobObjective")
    ranges = config.pop("ParameterRanges")
    definition = request.pop("TrainingJobDefinition")
    request["TrainingJobDefinitions"] = [
        {**definition, "DefinitionName": "short", "TuningObjective": objective, "HyperParameterRanges": ranges},
        {**definition, "DefinitionName": "long", "TuningObjective": objective, "HyperParameterRanges": ranges,
         "StaticHyperParameters": {**definition["StaticHyperParameters"], "epochs": "5"}},
    ]
    session.sagemaker_client.create_hyper_parameter_tuning_job(**request)
    name = request["HyperParameterTuningJobName"]
    deadline = time.time() + 60
    while session.platform.tuning_jobs.describe_hyper_parameter_tuning_job(name)["HyperParameterTuningJobStatus"] == "InProgress":
        assert time.time() < deadline
        time.sleep(0.1)
    summaries = session.platform.tuning_jobs.trial_summaries(name)
    assert sorted(s["TrainingJobDefinitionName"] for s in summaries) == ["long", "long", "short", "short"]
    epochs = {session.describe_training_job(s["TrainingJobName"])["HyperParameters"]["epochs"]
              for s in summaries if s["TrainingJobDefinitionName"] == "long"}
    assert epochs == {"5"}
