"""The job runner: takes one training job from InProgress to Completed, Failed or Stopped.

It plays SageMaker's platform role for one job: wait for capacity, stage the channels, write the
config files, start one "container" process per host, stream their output into the log store
(extracting metrics), enforce MaxRuntimeInSeconds and StopTrainingJob (SIGTERM, then SIGKILL after
a grace period), sync checkpoints, and upload ``model.tar.gz`` / ``output.tar.gz``. Every state
change is a row in the metadata store, so any process can watch the job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any

from forgeml.errors import ClientError, JobError
from forgeml.runtime.checkpoints import CheckpointSync
from forgeml.runtime.environment import JobIdentity, training_environment
from forgeml.runtime.layout import HostLayout, host_names
from forgeml.runtime.logsink import LogSink
from forgeml.runtime.metrics import MetricExtractor
from forgeml.runtime.packaging import make_tarball
from forgeml.runtime.pipe import PipeFeeder
from forgeml.runtime.programs import ContainerCommand, builtin_command, entrypoint_command, script_command
from forgeml.runtime.staging import (
    channel_input_mode,
    input_data_config,
    resolve_objects,
    shard,
    stage_file_channel,
    start_pipe_channel,
)
from forgeml.service.instance_types import instance_profile
from forgeml.service.platform import Platform
from forgeml.service.training_requests import Program, resolve_program
from forgeml.store import training_jobs as repo

POLL_SECONDS = 0.05
FLUSH_SECONDS = 0.25

SlotFactory = Callable[[Callable[[], bool]], AbstractContextManager[bool]]


@dataclass
class Outcome:
    """How the container processes ended."""

    status: str  # Completed | Failed | Stopped
    secondary: str
    message: str
    failure_reason: str | None = None


class JobRunner:
    def __init__(self, platform: Platform, job_name: str) -> None:
        self.platform = platform
        self.db = platform.db
        self.store = platform.artifacts
        self.name = job_name
        row = repo.get_job(self.db, job_name)
        if row is None:
            raise LookupError(f"training job {job_name} does not exist")
        self.row = row
        self.request: dict[str, Any] = row["request"]
        self.program: Program = resolve_program(self.request["AlgorithmSpecification"], self.request.get("HyperParameters", {}))
        self.root = platform.config.jobs_dir / job_name
        count = int(self.request["ResourceConfig"].get("InstanceCount", 1))
        if self.program.kind == "builtin":
            count = 1  # built-in algorithms use every core of one host here; see docs/training-jobs.md
        self.hosts = host_names(count)
        self.layouts = [HostLayout(self.root / host, host) for host in self.hosts]
        self.stop_event = threading.Event()
        self.stop_reason = "Stopped"
        self.feeders: list[PipeFeeder] = []
        self.checkpoints: CheckpointSync | None = None
        extractor = MetricExtractor(self.request["AlgorithmSpecification"].get("MetricDefinitions", []))
        self.sink = LogSink(self.db, job_name, extractor)
        self.epoch = int(time.time())

    # -- state ------------------------------------------------------------------------------------
    def _transition(self, status: str, secondary: str, message: str, **fields: Any) -> bool:
        # A progress step never undoes a stop request (InProgress -> Stopping happens elsewhere);
        # an ending applies to any job still active.
        allowed = ("InProgress",) if status == "InProgress" else repo.ACTIVE_STATUSES
        done = repo.transition(self.db, self.name, status, secondary, message, only_if_status=allowed, **fields)
        if not done and fields:  # keep the timestamps even when the status could not move
            repo.update_fields(self.db, self.name, **fields)
        return done

    def _stop_wanted(self) -> bool:
        if not self.stop_event.is_set() and repo.stop_requested(self.db, self.name):
            self.stop_event.set()
        return self.stop_event.is_set()

    def stream_name(self, host: str) -> str:
        return f"{self.name}/{host}-{self.epoch}"

    # -- the job ----------------------------------------------------------------------------------
    def run(self, slot: SlotFactory | None = None) -> None:
        repo.update_fields(self.db, self.name, runner_host=socket.gethostname(), runner_pid=os.getpid())
        try:
            with (slot or _no_slot)(self._stop_wanted) as acquired:
                if not acquired:
                    self._finish(Outcome("Stopped", "Stopped", "Training job stopped"), upload=False)
                    return
                self._transition("InProgress", "Starting", "Preparing the instances for training")
                outcome = self._run_stages()
                self._finish(outcome, upload=outcome.status != "Failed" or self._has_outputs())
        except JobError as exc:
            self._finish(Outcome("Failed", "Failed", "Training job failed", exc.failure_reason()), upload=False)
        except Exception as exc:  # the platform's own fault: still end the job, with the reason
            self._finish(Outcome("Failed", "Failed", "Training job failed",
                                 f"InternalServerError: {type(exc).__name__}: {exc}"), upload=False)
            raise
        finally:
            for feeder in self.feeders:
                feeder.close()
            self.sink.flush()

    def _run_stages(self) -> Outcome:
        start = time.time()
        self._transition("InProgress", "Downloading", "Downloading input data", training_start_time=start)
        commands = self._prepare()
        if self._stop_wanted():
            return Outcome("Stopped", "Stopped", "Training job stopped")
        self._transition("InProgress", "Training", "Training image download completed. Training in progress.")
        max_runtime = float(self.request["StoppingCondition"].get("MaxRuntimeInSeconds", 86400))
        outcome = self._supervise(commands, deadline=start + max_runtime)
        if self.checkpoints is not None:
            self.checkpoints.close()
        return outcome

    def _prepare(self) -> list[tuple[HostLayout, ContainerCommand, dict[str, str]]]:
        request = self.request
        spec = request["AlgorithmSpecification"]
        default_mode = spec.get("TrainingInputMode", "File")
        channels = request.get("InputDataConfig", [])
        resolved = {c["ChannelName"]: resolve_objects(self.store, c) for c in channels}
        inputs = input_data_config(channels, default_mode)
        profile = instance_profile(request["ResourceConfig"]["InstanceType"])
        cores = os.cpu_count() or 1
        identity = JobIdentity(
            job_name=self.name, job_arn=self.row["arn"], region=self.platform.config.region,
            instance_type=request["ResourceConfig"]["InstanceType"],
            num_cpus=min(profile.vcpus, cores) if profile.vcpus else cores,
            num_gpus=_visible_gpus() if profile.gpus else 0, hosts=self.hosts,
        )
        hyperparameters = request.get("HyperParameters", {})
        prepared = []
        for index, layout in enumerate(self.layouts):
            layout.create()
            for channel in channels:
                name = channel["ChannelName"]
                distribution = channel["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated")
                objects = shard(resolved[name], index, len(self.layouts), distribution)
                if not objects:
                    raise ClientError(f"channel '{name}' has {len(resolved[name])} object(s), fewer than the "
                                      f"{len(self.layouts)} instances ShardedByS3Key splits it across")
                if channel_input_mode(channel, default_mode) == "Pipe":
                    self.feeders.append(start_pipe_channel(self.store, layout, channel, objects))
                else:
                    stage_file_channel(self.store, layout, name, objects)
            resource_config = {
                "current_host": layout.host, "hosts": self.hosts, "current_instance_type": identity.instance_type,
                "current_group_name": "homogeneousCluster", "network_interface_name": "eth0",
                "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                     "instance_type": identity.instance_type, "hosts": self.hosts}],
            }
            layout.write_config("hyperparameters.json", hyperparameters)
            layout.write_config("inputdataconfig.json", inputs)
            layout.write_config("resourceconfig.json", resource_config)
            if "CheckpointConfig" in request and index == 0:
                local = layout.map_container_path(request["CheckpointConfig"].get("LocalPath", "/opt/ml/checkpoints/"))
                self.checkpoints = CheckpointSync(self.store, request["CheckpointConfig"]["S3Uri"], local)
                self.checkpoints.restore()
                self.checkpoints.start()
                layout.write_config("checkpointconfig.json", {"LocalPath": str(local),
                                                              "S3Uri": request["CheckpointConfig"]["S3Uri"]})
            env, args = training_environment(identity, layout, hyperparameters, inputs, resource_config,
                                             request.get("Environment", {}))
            if self.checkpoints is not None:
                env["SM_CHECKPOINT_DIR"] = str(self.checkpoints.local_dir)
            if self.program.kind == "builtin":
                command = builtin_command(layout, self.program.algorithm or "")
            elif self.program.kind == "script":
                command = script_command(self.store, layout, hyperparameters, args, env)
            else:
                command = entrypoint_command(self.store, layout, spec, hyperparameters)
            prepared.append((layout, command, env))
        return prepared

    # -- supervision ------------------------------------------------------------------------------
    def _supervise(self, commands: list[tuple[HostLayout, ContainerCommand, dict[str, str]]], deadline: float) -> Outcome:
        processes: list[tuple[HostLayout, ContainerCommand, subprocess.Popen[bytes]]] = []
        readers: list[threading.Thread] = []
        stderr_tails: dict[str, list[str]] = {}
        for layout, command, env in commands:
            stream = self.stream_name(layout.host)
            for line in command.preamble:
                self.sink.add(stream, line)
            try:
                process = subprocess.Popen(command.argv, cwd=command.cwd, env=env, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            except OSError as exc:
                raise ClientError(f"could not start {command.argv[0]}: {exc}") from exc
            processes.append((layout, command, process))
            tail = stderr_tails.setdefault(layout.host, [])
            assert process.stdout is not None and process.stderr is not None
            readers.append(self._reader(stream, process.stdout, None))
            readers.append(self._reader(stream, process.stderr, tail))
        signalled_at: float | None = None
        last_flush = time.time()
        while True:
            running = [p for _, _, p in processes if p.poll() is None]
            if not running:
                break
            now = time.time()
            if signalled_at is None:
                if now >= deadline:
                    self.stop_reason = "MaxRuntimeExceeded"
                    self.stop_event.set()
                if self._stop_wanted():
                    for process in running:
                        _signal_group(process, signal.SIGTERM)
                    signalled_at = now
            elif now - signalled_at >= self.platform.config.stop_grace_seconds:
                for process in running:
                    _signal_group(process, signal.SIGKILL)
            if now - last_flush >= FLUSH_SECONDS:
                self.sink.flush()
                last_flush = now
            time.sleep(POLL_SECONDS)
        for thread in readers:
            thread.join(timeout=5)
        self.sink.flush()
        if self.stop_event.is_set():
            if self.stop_reason == "MaxRuntimeExceeded":
                return Outcome("Stopped", "MaxRuntimeExceeded", "Training job exceeded MaxRuntimeInSeconds provided")
            return Outcome("Stopped", "Stopped", "Training job stopped")
        for feeder in self.feeders:
            if feeder.error is not None:
                return Outcome("Failed", "Failed", "Training job failed",
                               f"ClientError: Pipe mode could not stream channel '{feeder.channel}': {feeder.error}")
        for layout, command, process in processes:
            if process.returncode != 0:
                return Outcome("Failed", "Failed", "Training job failed",
                               self._failure_reason(layout, command, process.returncode, stderr_tails[layout.host]))
        return Outcome("Completed", "Completed", "Training job completed")

    def _reader(self, stream: str, pipe: IO[bytes], tail: list[str] | None) -> threading.Thread:
        def pump() -> None:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.sink.add(stream, line)
                if tail is not None:
                    tail.append(line)
                    del tail[:-20]
            pipe.close()

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _failure_reason(layout: HostLayout, command: ContainerCommand, returncode: int, tail: list[str]) -> str:
        if layout.failure_file.exists():
            text = layout.failure_file.read_text(errors="replace").strip()
            if text:
                return text if text.startswith(("ClientError", "AlgorithmError")) else f"AlgorithmError: {text}"
        excerpt = "\n".join(tail[-8:])
        reason = (f"AlgorithmError: {command.error_class}:\nExitCode {returncode}\n"
                  f"ErrorMessage \"{excerpt}\"\nCommand \"{' '.join(command.argv)}\"")
        if returncode in (-9, 137):
            reason += "\nExtraInfo \"OutOfMemory or killed: Process killed by SIGKILL (signal 9)\""
        layout.failure_file.write_text(reason)
        return reason

    # -- the end ----------------------------------------------------------------------------------
    def _has_outputs(self) -> bool:
        return any(layout.output_dir.exists() for layout in self.layouts)

    def _finish(self, outcome: Outcome, *, upload: bool) -> None:
        fields: dict[str, Any] = {}
        if upload:
            if outcome.status != "Failed":
                self._transition("InProgress" if outcome.status == "Completed" else "Stopping", "Uploading",
                                 "Uploading generated training model")
            try:
                self._upload(model=outcome.status != "Failed")
            except Exception as exc:  # an upload failure fails the job, with the reason
                outcome = Outcome("Failed", "Failed", "Training job failed",
                                  f"InternalServerError: could not upload the job's artifacts: {exc}")
        now = time.time()
        start = repo.get_job(self.db, self.name) or {}
        began = start.get("training_start_time") or now
        fields["training_end_time"] = now
        fields["billable_seconds"] = max(1, round(now - began))
        if outcome.failure_reason:
            fields["failure_reason"] = outcome.failure_reason[:1024]
        self._transition(outcome.status, outcome.secondary, outcome.message, **fields)

    def _upload(self, *, model: bool) -> None:
        request = self.request
        output = request["OutputDataConfig"]
        prefix = f"{output['S3OutputPath'].rstrip('/')}/{self.name}/output"
        scratch = self.root / "upload"
        if model:
            if output.get("CompressionType") == "NONE":
                for layout in self.layouts:
                    self.store.upload_directory(layout.model_dir, f"{prefix}/model")
            else:
                archive = make_tarball([layout.model_dir for layout in self.layouts], scratch / "model.tar.gz")
                self.store.put_file(archive, f"{prefix}/model.tar.gz")
        archive = make_tarball([layout.output_data_dir for layout in self.layouts], scratch / "output.tar.gz")
        self.store.put_file(archive, f"{prefix}/output.tar.gz")


@contextmanager
def _no_slot(_should_give_up: Callable[[], bool]) -> Iterator[bool]:
    """No capacity limit: executors that schedule jobs themselves (Ray) run the job at once."""
    yield True


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _visible_gpus() -> int:
    try:
        result = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))

