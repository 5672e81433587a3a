"""Benchmark: a batch transform job beside the bare model over the same CSV file.

Run as ``python bench/bench_batch_transform.py`` from the repository root (about a minute).

It generates a CSV of ``--rows`` rows x ``--features`` features (default 200,000 x 20), trains a
Linear Learner (binary classifier) on other generated rows, and in the same run measures:

* bare: the algorithm's own ``load_model`` once, then ``invoke(model, whole file, "text/csv",
  "text/csv")`` (parse, predict, encode every row in one call, in this process);
* the transform job: ``SplitType Line``, ``BatchStrategy MultiRecord`` (6 MB requests),
  ``Accept text/csv``, ``AssembleWith Line``, for each ``MaxConcurrentTransforms`` in ``--concurrency``.

A job is timed two ways: ``transform`` from its "Transforming ..." log line (the model server is
up) to its last "Processed ..." line (the .out object is written), the throughput the batch path
itself reaches; and ``end to end`` from CreateTransformJob to Completed, which adds starting the
runner and the model server. Each figure is the median of ``--runs`` runs; the ratio column is
rows/s over the bare model's rows/s (target >= 0.8 for the transform figure). Every job's output
is checked against the bare model's answer.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.algorithms.harness import ChannelData, train_builtin  # noqa: E402
from forgeml.algorithms.registry import get_algorithm  # noqa: E402
from forgeml.data.csv_format import write_csv  # noqa: E402
from forgeml.runtime.packaging import make_tarball  # noqa: E402

TRAIN_ROWS = 5000


def generate(rows: int, features: int, seed: int) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, features)).astype(np.float32)
    text = "\n".join(",".join(f"{v:.5f}" for v in row) for row in matrix.tolist()) + "\n"
    return matrix, text.encode()


def train(root: Path, features: int) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(TRAIN_ROWS, features)).astype(np.float32)
    y = (x @ rng.normal(size=features) > 0).astype(np.float32)
    (root / "train").mkdir(parents=True)
    write_csv(root / "train" / "data.csv", x, y)
    train_builtin("linear-learner", {"predictor_type": "binary_classifier", "feature_dim": str(features),
                                     "epochs": "2"},
                  {"train": ChannelData(root / "train", "text/csv")}, root / "model", root / "output",
                  stream=io.StringIO())
    return root / "model"


def bare_seconds(model_dir: Path, body: bytes) -> tuple[float, bytes]:
    algorithm = get_algorithm("linear-learner")
    model = algorithm.load_model(model_dir)
    started = time.perf_counter()
    answer, _ = algorithm.invoke(model, body, "text/csv", "text/csv")
    return time.perf_counter() - started, bytes(answer)


def run_job(session: Any, name: str, concurrency: int) -> tuple[float, float]:
    """(transform seconds from the job's log, end-to-end seconds)."""
    client = session.sagemaker_client
    started = time.perf_counter()
    client.create_transform_job(
        TransformJobName=name, ModelName="bench-ll", BatchStrategy="MultiRecord", MaxConcurrentTransforms=concurrency,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bench/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://bench/out/{name}", "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1})
    while True:
        described = client.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.02)
    end_to_end = time.perf_counter() - started
    if described["TransformJobStatus"] != "Completed":
        raise SystemExit(f"{name} ended {described['TransformJobStatus']}: {described.get('FailureReason')}")
    events = session.platform.transform_jobs.log_events(name)
    first = next(e["timestamp"] for e in events if e["message"].startswith("Transforming "))
    last = max(e["timestamp"] for e in events if e["message"].startswith("Processed "))
    return (last - first) / 1000.0, end_to_end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="forgeml-bench-transform-") as tmp:
        root = Path(tmp)
        os.environ["FORGEML_HOME"] = str(root / "home")
        from forgeml import Session
        from forgeml.image_uris import retrieve

        model_dir = train(root / "ll", args.features)
        _, body = generate(args.rows, args.features, seed=7)
        session = Session(root / "home")
        store = session.platform.artifacts
        store.put_file(make_tarball([model_dir], root / "model.tar.gz"), "s3://bench/model/model.tar.gz")
        store.put_bytes(body, "s3://bench/in/data.csv")
        session.sagemaker_client.create_model(ModelName="bench-ll", PrimaryContainer={
            "Image": retrieve("linear-learner"), "ModelDataUrl": "s3://bench/model/model.tar.gz"})
        print(f"{args.rows:,} rows x {args.features} features, {len(body) / 1e6:.1f} MB of CSV; "
              f"{os.cpu_count()} cores; median of {args.runs} runs")

        bare_runs = []
        expected = b""
        for _ in range(args.runs):
            seconds, expected = bare_seconds(model_dir, body)
            bare_runs.append(seconds)
        bare = statistics.median(bare_runs)
        expected_rows = np.loadtxt(io.BytesIO(expected), delimiter=",")

        rows: list[tuple[str, float, float]] = [("bare model invoke (whole file)", bare, bare)]
        for concurrency in args.concurrency:
            runs = [run_job(session, f"bench-c{concurrency}-{i}", concurrency) for i in range(args.runs)]
            got = np.loadtxt(io.BytesIO(store.get_bytes(f"s3://bench/out/bench-c{concurrency}-0/data.csv.out")),
                             delimiter=",")
            np.testing.assert_allclose(got, expected_rows, rtol=1e-5)
            rows.append((f"transform job, MaxConcurrentTransforms {concurrency}",
                         statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))

        print(f"{'':<44} {'transform s':>11} {'rows/s':>10} {'ratio':>6}   {'end to end s':>12} {'rows/s':>10} "
              f"{'ratio':>6}")
        for label, seconds, total in rows:
            rate, total_rate = args.rows / seconds, args.rows / total
            print(f"{label:<44} {seconds:>11.2f} {rate:>10,.0f} {rate * bare / args.rows:>6.2f}   {total:>12.2f} "
                  f"{total_rate:>10,.0f} {total_rate * bare / args.rows:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
