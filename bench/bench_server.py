"""Benchmark: forgeml server's latency through boto3, beside the same calls made in process.

Run as ``python bench/bench_server.py`` from the repository root (about a minute; ``--quick`` for
fewer samples).

On a temporary FORGEML_HOME it writes 1,000 finished training jobs straight into the store (the
store layer's ``insert_job``, as the control plane writes them, each with its metrics), starts the
real ``forgeml server`` command in its own process (authentication on: every request is SigV4
signed and verified) and times, with boto3 clients over kept-alive connections:

* ``DescribeTrainingJob`` of random jobs and ``ListTrainingJobs`` pages (10 and 100 per page, a
  name filter, a status filter sorted by name) — target p50 under 10 ms;
* ``InvokeEndpoint`` of a Linear Learner endpoint (one CSV row) through the server
  (``sagemaker-runtime`` client) against the same endpoint called in process
  (``platform.runtime.invoke_endpoint`` and the forgeml ``Predictor``), whose difference is the
  server's overhead;
* ``GET /health`` over one kept-alive connection: the floor of an HTTP round trip to the server.

Variants are measured in interleaved rounds so a busy machine slows all of them alike; the table
gives p50/p90/p99 over every sample, in milliseconds.
"""

from __future__ import annotations

import argparse
import configparser
import http.client
import io
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

JOBS = 1000
ROLE = "arn:aws:iam::000000000000:role/bench"
FEATURES = 4
TARGET_P50_MS = 10.0


# -- the store: 1,000 finished jobs --------------------------------------------------------------


def job_request(name: str, index: int) -> dict[str, Any]:
    """A Linear Learner CreateTrainingJob request, as the SDK sends one."""
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
                            "epochs": str(1 + index % 15), "learning_rate": f"{0.001 * (1 + index % 50):.3f}"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bench/train/", "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": "text/csv"}],
        "OutputDataConfig": {"S3OutputPath": "s3://bench/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def fill_store(platform: Any, count: int) -> list[str]:
    """``count`` finished jobs (Completed, Failed or Stopped) with transitions and final metrics, fast."""
    from sqlalchemy import insert

    from forgeml.service.training_jobs import model_artifact_uri
    from forgeml.service.training_requests import normalize_create_request
    from forgeml.store import tables
    from forgeml.store import training_jobs as repo

    names = []
    start = time.time() - count * 60.0
    for index in range(count):
        name = f"bench-job-{index:04d}"
        normalized, _ = normalize_create_request(job_request(name, index))
        status = ("Completed", "Completed", "Completed", "Failed", "Stopped")[index % 5]
        created = round(start + index * 60.0, 6)
        repo.insert_job(platform.db, {
            "name": name, "arn": platform.arn("training-job", name), "status": status, "secondary_status": status,
            "creation_time": created, "last_modified_time": created + 50, "training_start_time": created + 5,
            "training_end_time": created + 50, "model_artifacts": model_artifact_uri(normalized),
            "billable_seconds": 45, "stop_requested": False, "request": normalized,
            "failure_reason": "AlgorithmError: bench" if status == "Failed" else None,
        }, ("Starting", "Starting the training job"))
        with platform.db.write() as conn:
            conn.execute(insert(tables.metric_points).values([
                {"job_name": name, "metric_name": metric, "value": value, "timestamp": created + 50}
                for metric, value in (("train:objective_loss", 0.5 - index / 4000),
                                      ("validation:binary_f_beta", 0.8 + index / 10000))]))
        names.append(name)
    return names


# -- the server ----------------------------------------------------------------------------------


class ServerProcess:
    """``forgeml server --port 0`` in a child process; its URL and default key from what it printed."""

    def __init__(self, home: Path, log: Path) -> None:
        self.log = log
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forgeml.cli.server", "--port", "0", "--log-level", "warning"],
                env={**os.environ, "FORGEML_HOME": str(home)}, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.url = self._url_from_banner()
        credentials = configparser.ConfigParser()
        credentials.read(home / "credentials")
        self.access_key = credentials["forgeml"]["aws_access_key_id"]
        self.secret_key = credentials["forgeml"]["aws_secret_access_key"]
        self._wait_healthy()

    def _url_from_banner(self) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the "Use it:" line comes once the key exists
            found = re.search(r"^Use it:.*AWS_ENDPOINT_URL=(\S+)", line)
            if found:
                return found.group(1)
        raise RuntimeError(f"forgeml server exited without serving: {self.log.read_text()[-2000:]}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if health_connection(self.url).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("forgeml server did not answer /health within 60 s")

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(service, endpoint_url=self.url, region_name="us-east-1",
                                              aws_access_key_id=self.access_key,
                                              aws_secret_access_key=self.secret_key)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


class HealthProbe:
    """GET /health over one kept-alive connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def __call__(self) -> None:
        self.connection.request("GET", "/health")
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")


def health_connection(url: str) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


# -- the endpoint --------------------------------------------------------------------------------


def linear_learner_artifact(root: Path) -> Path:
    """A small binary Linear Learner trained here, packed as model.tar.gz."""
    from forgeml.algorithms.harness import ChannelData, train_builtin
    from forgeml.data.csv_format import write_csv

    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, FEATURES)).astype(np.float32)
    labels = (features @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.float32)
    (root / "train").mkdir(parents=True)
    write_csv(root / "train" / "data.csv", features, labels)
    train_builtin("linear-learner", {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
                                     "epochs": "3"},
                  {"train": ChannelData(root / "train", "text/csv")}, root / "model", root / "output",
                  stream=io.StringIO())
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((root / "model").iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def deploy(platform: Any, archive: Path, name: str) -> None:
    from forgeml.sdk.image_uris import retrieve

    uri = f"s3://bench/{name}/model.tar.gz"
    platform.artifacts.ensure_bucket("bench")
    platform.artifacts.put_file(archive, uri)
    platform.models.create_model({"ModelName": name, "ExecutionRoleArn": ROLE, "PrimaryContainer": {
        "Image": retrieve("linear-learner", "us-east-1"), "ModelDataUrl": uri}})
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": name, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": name, "EndpointConfigName": name})
    deadline = time.monotonic() + 120
    while (status := platform.endpoints.describe_endpoint(name)["EndpointStatus"]) != "InService":
        if status == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} is {status}")
        time.sleep(0.1)


def delete_endpoint(platform: Any, name: str) -> None:
    platform.endpoints.delete_endpoint(name)
    deadline = time.monotonic() + 30
    while platform.endpoints.exists(name) and time.monotonic() < deadline:
        time.sleep(0.1)


# -- timing --------------------------------------------------------------------------------------


def measure(variants: dict[str, Callable[[], Any]], samples: int, rounds: int = 5) -> dict[str, list[float]]:
    """Milliseconds per call of each variant, in interleaved rounds, after a few warm-up calls each."""
    timings: dict[str, list[float]] = {label: [] for label in variants}
    for call in variants.values():
        for _ in range(5):
            call()
    per_round = max(samples // rounds, 1)
    for _ in range(rounds):
        for label, call in variants.items():
            for _ in range(per_round):
                started = time.perf_counter()
                call()
                timings[label].append((time.perf_counter() - started) * 1000.0)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def print_table(title: str, timings: dict[str, list[float]], note: Callable[[str, float], str]) -> None:
    width = max(len(label) for label in timings)
    print(f"\n{title}")
    print(f"{'call':<{width}}  {'n':>5}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  note")
    for label, values in timings.items():
        p50 = statistics.median(values)
        print(f"{label:<{width}}  {len(values):>5}  {p50:>8.2f}  {percentile(values, 0.9):>8.2f}  "
              f"{percentile(values, 0.99):>8.2f}  {note(label, p50)}")


def control_plane(server: ServerProcess, platform: Any, names: list[str], samples: int) -> None:
    sm = server.client("sagemaker")
    picks = random.Random(1)

    def describe() -> None:
        name = picks.choice(names)
        if sm.describe_training_job(TrainingJobName=name)["TrainingJobName"] != name:
            raise RuntimeError("describe answered another job")

    def lister(**request: Any) -> Callable[[], None]:
        def call() -> None:
            if not sm.list_training_jobs(**request)["TrainingJobSummaries"]:
                raise RuntimeError(f"empty page for {request}")
        return call

    def describe_in_process() -> None:
        platform.training_jobs.describe_training_job(picks.choice(names))

    timings = measure({
        "boto3 DescribeTrainingJob": describe,
        "boto3 ListTrainingJobs (10 a page)": lister(),
        "boto3 ListTrainingJobs (100 a page)": lister(MaxResults=100),
        "boto3 ListTrainingJobs NameContains": lister(NameContains="job-09", MaxResults=100),
        "boto3 ListTrainingJobs StatusEquals, by Name": lister(StatusEquals="Failed", SortBy="Name", MaxResults=50),
        "in process DescribeTrainingJob": describe_in_process,
        "in process ListTrainingJobs (10 a page)": lambda: platform.training_jobs.list_training_jobs(),
        "in process ListTrainingJobs (100 a page)": lambda: platform.training_jobs.list_training_jobs(MaxResults=100),
    }, samples)
    print_table(f"Control plane: {len(names)} jobs in the store (target: p50 < {TARGET_P50_MS:g} ms through boto3 for "
                "Describe and a default List page)", timings, lambda label, p50: target_note(label, p50))


def target_note(label: str, p50: float) -> str:
    """Whether a call the target names meets it; the bigger pages are reported beside it."""
    if label in ("boto3 DescribeTrainingJob", "boto3 ListTrainingJobs (10 a page)"):
        return "meets target" if p50 < TARGET_P50_MS else "ABOVE TARGET"
    return PAGE_NOTES.get(label, "")


#: what the bigger List pages hold (1,000 jobs: 100 match "job-09", 200 are Failed)
PAGE_NOTES = {
    "boto3 ListTrainingJobs (100 a page)": "100 summaries a page",
    "boto3 ListTrainingJobs NameContains": "100 summaries a page",
    "boto3 ListTrainingJobs StatusEquals, by Name": "50 summaries a page",
}


def runtime_plane(server: ServerProcess, platform: Any, home: Path, endpoint: str, samples: int) -> None:
    from forgeml import Session
    from forgeml.predictor import Predictor
    from forgeml.serializers import CSVSerializer

    body = b"1.0,-2.0,0.5,0.0"
    runtime = server.client("sagemaker-runtime")
    embedded = Predictor(endpoint, Session(home), serializer=CSVSerializer())
    remote = Predictor(endpoint, Session(endpoint_url=server.url, aws_access_key_id=server.access_key,
                                         aws_secret_access_key=server.secret_key, region_name="us-east-1"),
                       serializer=CSVSerializer())
    expected = platform.runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")["Body"].read()

    def through_server() -> None:
        answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read()
        if answer != expected:
            raise RuntimeError(f"the server answered {answer!r}, in process {expected!r}")

    timings = measure({
        "boto3 sagemaker-runtime InvokeEndpoint via server": through_server,
        "forgeml Predictor, Session(endpoint_url=server)": lambda: remote.predict(body),
        "forgeml Predictor, embedded Session": lambda: embedded.predict(body),
        "platform.runtime.invoke_endpoint (in process)": lambda: platform.runtime.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType="text/csv")["Body"].read(),
        "GET /health, kept-alive http.client": HealthProbe(server.url),
    }, samples)
    in_process = statistics.median(timings["platform.runtime.invoke_endpoint (in process)"])
    print_table("Runtime: one CSV row to a Linear Learner endpoint", timings,
                lambda label, p50: "" if "in process" in label or "health" in label else
                f"{p50 - in_process:+.2f} ms over in process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    args = parser.parse_args()
    samples = 100 if args.quick else 500
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        root = Path(tmp)
        home = root / "home"
        os.environ["FORGEML_HOME"] = str(home)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            os.environ.pop(name, None)
        from forgeml.service.platform import Platform

        platform = Platform.get()
        started = time.perf_counter()
        names = fill_store(platform, JOBS)
        print(f"stored {len(names)} finished training jobs in {time.perf_counter() - started:.1f} s")
        archive = linear_learner_artifact(root / "model")
        deploy(platform, archive, "bench-endpoint")
        server = ServerProcess(home, root / "server.log")
        print(f"forgeml server at {server.url} (authentication on); {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        try:
            control_plane(server, platform, names, samples)
            runtime_plane(server, platform, home, "bench-endpoint", samples)
        finally:
            server.stop()
            delete_endpoint(platform, "bench-endpoint")


if __name__ == "__main__":
    main()
