"""``forgeml demo``: the flagship flow end to end, on data it generates.

Train (built-in Linear Learner, then a script-mode job) -> tune -> deploy the best model and
invoke it -> batch transform. Each step prints what a user would look at: the job's status and
log as it runs, its metrics and where its model went, the endpoint's answers and latency, the
captured requests, the transform's output. The demo uses its own FORGEML_HOME (a temporary folder) unless one is set, so
it never mixes with a user's jobs.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forgeml.cli.render import console

if TYPE_CHECKING:
    from forgeml.sdk.session import Session
    from forgeml.sdk.tuner import HyperparameterTuner

SCRIPT = """
    import argparse, os
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--regularization", type=float, default=1.0)
    args = parser.parse_args()

    def load(channel):
        data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_" + channel.upper()], channel + ".csv"), delimiter=",")
        return data[:, 1:], data[:, 0]

    X, y = load("train")
    Xv, yv = load("validation")
    model = LogisticRegression(C=args.regularization, max_iter=500).fit(X, y)
    print(f"train-accuracy: {model.score(X, y):.4f};")
    print(f"final-score: {model.score(Xv, yv):.4f};")
    import pickle
    pickle.dump(model, open(os.path.join(os.environ["SM_MODEL_DIR"], "model.pkl"), "wb"))
"""


def make_dataset(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A 3-class, 22-feature tabular problem shaped like the UFO course's data."""
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=rows, n_features=22, n_informative=12, n_redundant=4, n_classes=3,
        n_clusters_per_class=2, class_sep=1.5, random_state=seed,
    )
    return features.astype(np.float32), labels.astype(np.float32)


def _write_csv(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    np.savetxt(path, np.column_stack([labels, features]), delimiter=",", fmt="%.6g")


def run_demo(quick: bool = False) -> int:
    if "FORGEML_HOME" not in os.environ:
        os.environ["FORGEML_HOME"] = tempfile.mkdtemp(prefix="forgeml-demo-")
    from forgeml import Estimator, Session

    session = Session()
    console.rule("[bold]forgeml demo")
    console.print(f"FORGEML_HOME = {session.config.home}")
    rows = 3000 if quick else 15000
    features, labels = make_dataset(rows)
    split = int(rows * 0.8)
    work = Path(tempfile.mkdtemp(prefix="forgeml-demo-data-"))
    for name, (x, y) in {"train": (features[:split], labels[:split]),
                         "validation": (features[split:], labels[split:])}.items():
        (work / name).mkdir()
        _write_csv(work / name / f"{name}.csv", x, y)
    inputs = {name: session.upload_data(str(work / name), key_prefix=f"demo/{name}") for name in ("train", "validation")}
    console.print(f"Generated {rows} rows x 22 features, 3 classes; uploaded to {inputs['train']} and {inputs['validation']}")

    console.rule("1. Built-in Linear Learner on RecordIO-protobuf (the UFO course's flow)")
    from forgeml import LinearLearner

    learner = LinearLearner(
        predictor_type="multiclass_classifier", num_classes=3, epochs=15, mini_batch_size=1000,
        instance_type="ml.m5.large", sagemaker_session=session,
    )
    train_set = learner.record_set(features[:split], labels[:split], channel="train")
    validation_set = learner.record_set(features[split:], labels[split:], channel="validation")
    started = time.time()
    learner.fit([train_set, validation_set], logs=False)
    _report(learner, time.time() - started, ("validation:multiclass_accuracy", "validation:macro_f_beta",
                                              "validation:objective_loss"))

    console.rule("2. Script-mode training job (scikit-learn, a regex metric)")
    source = work / "code"
    source.mkdir()
    (source / "train.py").write_text(textwrap.dedent(SCRIPT))
    estimator = Estimator(
        entry_point="train.py", source_dir=str(source), hyperparameters={"regularization": 0.5},
        metric_definitions=[{"Name": "validation:accuracy", "Regex": r"final-score: (\S+);"}],
        instance_type="ml.m5.large", sagemaker_session=session,
    )
    started = time.time()
    estimator.fit(inputs)
    _report(estimator, time.time() - started, ("validation:accuracy",))

    console.rule("3. Hyperparameter tuning job (Bayesian, Linear Learner)")
    from forgeml.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    tuner = HyperparameterTuner(
        learner, "validation:objective_loss",
        {"learning_rate": ContinuousParameter(0.0001, 1.0, "Logarithmic"),
         "wd": ContinuousParameter(0.0001, 1.0, "Logarithmic"),
         "mini_batch_size": IntegerParameter(100, 2000)},
        objective_type="Minimize", strategy="Bayesian", max_jobs=6 if quick else 12, max_parallel_jobs=2,
        random_seed=0,
    )
    started = time.time()
    tuner.fit([train_set, validation_set], wait=False)
    description = tuner.wait()
    frame = tuner.analytics().dataframe().sort_values("FinalObjectiveValue")
    console.print(f"[green]{description['HyperParameterTuningJobName']}[/] {description['HyperParameterTuningJobStatus']} "
                  f"in {time.time() - started:.1f} s; the three best training jobs:")
    columns = ["TrainingJobName", "learning_rate", "wd", "mini_batch_size", "FinalObjectiveValue"]
    console.print(frame[columns].head(3).to_string(index=False))
    chart = tuner.analytics().plot(work / "tuning-objective.html")
    console.print(f"objective-over-time chart: {chart}")

    console.rule("4. Deploy the best model and invoke it (CSV in, JSON out, as the UFO course's Lambda does)")
    _deploy_and_invoke(session, tuner, features[split:], labels[split:])

    console.rule("5. Batch transform the validation set with the best model")
    _batch_transform(session, tuner, work, features[split:], labels[split:])
    return 0


def _deploy_and_invoke(session: Session, tuner: HyperparameterTuner, features: np.ndarray, labels: np.ndarray) -> None:
    from forgeml.deserializers import JSONDeserializer
    from forgeml.model_monitor import DataCaptureConfig
    from forgeml.serializers import CSVSerializer

    bucket = session.default_bucket()
    capture = DataCaptureConfig(enable_capture=True, sampling_percentage=100,
                                destination_s3_uri=f"s3://{bucket}/demo/data-capture", sagemaker_session=session)
    started = time.time()
    predictor = tuner.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             endpoint_name="forgeml-demo", data_capture_config=capture)
    console.print(f"endpoint [green]{predictor.endpoint_name}[/] InService in {time.time() - started:.1f} s")
    try:
        predictor.serializer = CSVSerializer()
        predictor.deserializer = JSONDeserializer()
        one = predictor.predict(features[:1])["predictions"][0]
        console.print(f"one row   -> predicted_label {one['predicted_label']} (true {int(labels[0])}), "
                      f"scores {[round(v, 3) for v in one['score']]}")
        timings = []
        for row in features[:200]:
            tick = time.perf_counter()
            predictor.predict(row[None, :])
            timings.append(time.perf_counter() - tick)
        batch = predictor.predict(features)["predictions"]
        accuracy = float(np.mean([p["predicted_label"] == y for p, y in zip(batch, labels, strict=True)]))
        console.print(f"{len(labels)} rows in one request -> accuracy {accuracy:.4f}; 200 single-row requests: "
                      f"median {np.median(timings) * 1e3:.2f} ms, p99 {np.percentile(timings, 99) * 1e3:.2f} ms")
    finally:
        predictor.delete_endpoint()
    while session.platform.endpoints.exists(predictor.endpoint_name):
        time.sleep(0.05)  # deleting flushes the captured records
    from forgeml.hosting.capture import read_capture_records

    records = read_capture_records(session.platform.artifacts, capture.destination_s3_uri,
                                   predictor.endpoint_name)
    console.print(f"endpoint deleted; {len(records)} captured request/response records under "
                  f"{capture.destination_s3_uri}/{predictor.endpoint_name}/AllTraffic/")


def _batch_transform(session: Session, tuner: HyperparameterTuner, work: Path, features: np.ndarray, labels: np.ndarray) -> None:
    (work / "transform").mkdir()
    np.savetxt(work / "transform" / "validation.csv", features, delimiter=",", fmt="%.6g")
    data = session.upload_data(str(work / "transform"), key_prefix="demo/transform-input")
    estimator = tuner.best_estimator()
    transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large", strategy="MultiRecord",
                                        assemble_with="Line", accept="application/jsonlines")
    started = time.time()
    transformer.transform(data, content_type="text/csv", split_type="Line", logs=False)
    job = transformer.latest_transform_job
    assert job is not None
    output = f"{job.describe()['TransformOutput']['S3OutputPath'].rstrip('/')}/validation.csv.out"
    lines = session.platform.artifacts.get_bytes(output).decode().splitlines()
    predicted = [json.loads(line)["predicted_label"] for line in lines]
    accuracy = float(np.mean(np.array(predicted) == labels))
    console.print(f"[green]{job.name}[/] Completed in {time.time() - started:.1f} s: "
                  f"{len(lines)} predictions in {output}, accuracy {accuracy:.4f}")


def _report(estimator: object, elapsed: float, metric_names: tuple[str, ...]) -> None:
    job = estimator.latest_training_job  # type: ignore[attr-defined]
    description = job.describe()
    metrics = {m["MetricName"]: m["Value"] for m in description["FinalMetricDataList"]}
    console.print(f"[green]{job.name}[/] {description['TrainingJobStatus']} in {elapsed:.2f} s (create to completed)")
    for name in metric_names:
        console.print(f"  {name:<34} {metrics[name]:.4f}")
    console.print(f"  model artifact: {description['ModelArtifacts']['S3ModelArtifacts']}")
