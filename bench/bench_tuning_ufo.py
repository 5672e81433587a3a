"""Seed 000's tuning job on the UFO data: Linear Learner, Bayesian, 50 jobs, 5 in parallel.

SageMaker: 16 minutes, best validation:objective_loss 0.1782. Target here: under 2 minutes on a
2-core machine, best objective <= 0.1782. Uses ../shared/data/ufo when present, otherwise a
generated dataset of the same shape (then the SageMaker figure is not comparable).

    python bench/bench_tuning_ufo.py [--jobs 50] [--parallel 5]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

UFO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ufo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--strategy", default="Bayesian")
    args = parser.parse_args()
    os.environ.setdefault("FORGEML_HOME", tempfile.mkdtemp(prefix="forgeml-bench-tuning-"))

    from forgeml import LinearLearner, Session, TrainingInput
    from forgeml.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    session = Session(poll_interval=0.05)
    content = "application/x-recordio-protobuf"
    if (UFO / "ufo_sightings_train_recordIO_protobuf.data").exists():
        source = "UFO RecordIO files (seed 000)"
        train = session.upload_data(str(UFO / "ufo_sightings_train_recordIO_protobuf.data"), key_prefix="ufo/train")
        validation = session.upload_data(str(UFO / "ufo_sightings_validation_recordIO_protobuf.data"),
                                         key_prefix="ufo/validation")
        inputs = {"train": TrainingInput(train, content_type=content),
                  "validation": TrainingInput(validation, content_type=content)}
    else:
        from forgeml.cli.demo import make_dataset

        source = "generated 18,000 x 22, 3 classes (no ../shared)"
        features, labels = make_dataset(18000)
        probe = LinearLearner(predictor_type="multiclass_classifier", num_classes=3, sagemaker_session=session)
        inputs = [probe.record_set(features[:14430], labels[:14430]),
                  probe.record_set(features[14430:], labels[14430:], channel="validation")]

    learner = LinearLearner(predictor_type="multiclass_classifier", num_classes=3, feature_dim=22, epochs=15,
                            use_bias=True, input_mode="Pipe", instance_type="ml.m5.large", sagemaker_session=session)
    tuner = HyperparameterTuner(
        learner, "validation:objective_loss",
        {"mini_batch_size": IntegerParameter(500, 5000, "Linear"),
         "wd": ContinuousParameter(0.0001, 1.0, "Logarithmic"),
         "l1": ContinuousParameter(0.0001, 1.0, "Logarithmic"),
         "learning_rate": ContinuousParameter(0.0001, 1.0, "Logarithmic")},
        objective_type="Minimize", strategy=args.strategy, max_jobs=args.jobs, max_parallel_jobs=args.parallel,
        random_seed=0,
    )
    started = time.time()
    tuner.fit(inputs, wait=False)
    description = tuner.wait(stream=io.StringIO())
    elapsed = time.time() - started
    best = description["BestTrainingJob"]
    value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    frame = tuner.analytics().dataframe()
    per_job = frame["TrainingElapsedTimeSeconds"].median()

    table = Table(title=f"Seed 000 tuning: Linear Learner, {args.strategy}, {args.jobs} jobs, {args.parallel} parallel ({source})")
    for column in ("measure", "forgeml", "SageMaker (seed 000)", "target"):
        table.add_column(column)
    table.add_row("wall time", f"{elapsed:.1f} s", "16 min", "< 2 min")
    table.add_row("best validation:objective_loss", f"{value:.4f}", "0.1782", "<= 0.1782")
    table.add_row("median training job (start to end)", f"{per_job:.2f} s", "", "")
    table.add_row("jobs completed / stopped / failed",
                  f"{description['TrainingJobStatusCounters']['Completed']} / {description['TrainingJobStatusCounters']['Stopped']}"
                  f" / {description['TrainingJobStatusCounters']['NonRetryableError']}", "50 / 0 / 0", "")
    Console().print(table)
    Console().print(f"best hyperparameters: {best['TunedHyperParameters']}")
    if source.startswith("UFO"):
        Console().print(
            "note: no linear model's mean multiclass cross-entropy on this validation file goes below 0.1868 "
            "(scikit-learn's LogisticRegression fitted on the validation file itself, C=1e4); trained on the train "
            "file it reaches 0.1972. So SageMaker's 0.1782 is not a plain mean cross-entropy of this validation set "
            "(its exact definition is undocumented); forgeml reports the plain mean, as the metric is described.")


if __name__ == "__main__":
    main()
