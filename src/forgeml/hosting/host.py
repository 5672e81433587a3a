"""The endpoint host: one long-lived process per endpoint, started by the executor.

It serves the router on a background thread and, on its main thread, runs the endpoint's life:
deploy the config's variants (``Creating`` -> ``InService``, or ``Failed`` with the reason), then
every tick: carry out a requested delete or update, replace dead workers, apply autoscaling, and
write the variants' state back for DescribeEndpoint. An update deploys a complete new (green) fleet
beside the serving (blue) one and shifts traffic by the DeploymentConfig's steps, watching its
rollback alarms; any alarm in ALARM sends all traffic back to blue (``RollingBack``).

SIGUSR1 (the control plane's "look now") wakes the loop; SIGTERM stops serving but leaves the
endpoint's record as it is, so the next Describe or invoke restarts the host (``SystemUpdating``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from forgeml.hosting.alarms import evaluate_alarm
from forgeml.hosting.autoscaling import TargetTracking, metric_window_seconds
from forgeml.hosting.bandit import ThompsonSampling
from forgeml.hosting.capture import CaptureSettings, CaptureWriter
from forgeml.hosting.deployment import traffic_plan
from forgeml.hosting.fleet import FleetError, Instance, VariantFleet, stop_instances
from forgeml.hosting.metrics import InvocationMetrics
from forgeml.hosting.router import Fleet, Route, RouterApp, RoutingTable, Target
from forgeml.service.platform import Platform
from forgeml.serving.worker import bind_socket, socket_url
from forgeml.store import endpoints as repo

TICK_SECONDS = 0.2
BANDIT_TAG = "forgeml:routing"
log = logging.getLogger("forgeml.hosting")


class Deployment:
    """The fleets of one endpoint config: production variants (with weights) and shadow variants."""

    def __init__(self, config: dict[str, Any], production: list[VariantFleet], shadows: list[VariantFleet],
                 weights: dict[str, float], counts: dict[str, int]) -> None:
        self.config = config
        self.production = production
        self.shadows = shadows
        self.weights = weights
        self.desired_counts = counts

    @property
    def fleets(self) -> list[VariantFleet]:
        return self.production + self.shadows

    def fleet(self, variant: str) -> VariantFleet | None:
        return next((f for f in self.fleets if f.name == variant), None)

    def start(self) -> None:
        """Stage and start every variant's instances; on failure nothing is left running."""
        try:
            for fleet in self.fleets:
                fleet.start(self.desired_counts[fleet.name])
        except FleetError:
            self.stop()
            raise

    def stop(self) -> None:
        for fleet in self.fleets:
            fleet.stop_all(timeout=10)

    def routing(self) -> Fleet:
        return Fleet(tuple(_route(f) for f in self.production), tuple(self.weights[f.name] for f in self.production))


def _route(fleet: VariantFleet) -> Route:
    return Route(fleet.name, tuple(Target(i.instance_id, i.pool) for i in fleet.instances), fleet.metrics)


class EndpointHost:
    def __init__(self, platform: Platform, name: str) -> None:
        self.platform = platform
        self.db = platform.db
        self.name = name
        self.folder = platform.config.home / "endpoint" / name
        self.wake_event = threading.Event()
        self.terminating = threading.Event()
        self.router = RouterApp(name, region=platform.config.region, account_id=platform.config.account_id)
        self.blue: Deployment | None = None
        self.green: Deployment | None = None
        self.green_fraction = 0.0
        self.capture: CaptureWriter | None = None
        self.bandit: ThompsonSampling | None = None
        self.trackers: dict[str, TargetTracking] = {}
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._published: Any = None
        self._log_lines: list[tuple[str, float, str]] = []
        self._log_lock = threading.Lock()
        self._last_autoscale = 0.0
        self._last_state_write = 0.0

    def wake(self) -> None:
        self.wake_event.set()

    def _worker_output(self, stream: str, line: str) -> None:
        """A worker printed ``line`` (reader threads call this): kept for the next flush to the log store."""
        with self._log_lock:
            self._log_lines.append((stream, time.time(), line))

    def _flush_logs(self) -> None:
        with self._log_lock:
            lines, self._log_lines = self._log_lines, []
        repo.append_logs(self.db, self.name, lines)

    def terminate(self) -> None:
        self.terminating.set()
        self.wake_event.set()

    # -- life ---------------------------------------------------------------------------------
    def run(self) -> None:
        row = repo.get_endpoint(self.db, self.name)
        if row is None:
            return
        repo.update_endpoint(self.db, self.name, runner_pid=os.getpid())
        try:
            url = self._start_router()
            config = self.platform.endpoint_configs.describe_endpoint_config(row["config_name"])
            retained = {v["VariantName"]: v for v in row["variants"] or []} if row["status"] == "SystemUpdating" else {}
            try:
                self.blue = self._deploy(config, retained)
            except FleetError as exc:
                repo.update_endpoint(self.db, self.name, status="Failed", failure_reason=f"ClientError: {exc}")
                self._flush_logs()
                return
            self._configure_extras(config)
            self._publish()
            repo.update_endpoint(self.db, self.name, status="InService", router_url=url, failure_reason=None,
                                 **self._state_fields())
            self._loop()
        except Exception as exc:  # the record must not stay Creating/Updating with nobody behind it
            log.exception("endpoint host failed")
            repo.update_endpoint(self.db, self.name, status="Failed", router_url=None,
                                 failure_reason=f"InternalServerError: the endpoint host failed: {type(exc).__name__}: {exc}")
        finally:
            self._shutdown()

    def _loop(self) -> None:
        while not self.terminating.is_set():
            self.wake_event.wait(TICK_SECONDS)
            self.wake_event.clear()
            row = repo.get_endpoint(self.db, self.name)
            if row is None or row["delete_requested"]:
                self._delete()
                return
            if row["pending_update"]:
                self._update(row["pending_update"])
                continue
            self._tend()

    def _tend(self) -> None:
        """Replace dead workers, autoscale, write state: what every tick (and every bake tick) does."""
        self._replace_dead()
        try:
            self._autoscale()
        except Exception:  # a broken policy must not take the endpoint down; it is logged each time
            log.exception("autoscaling failed")
        now = time.monotonic()
        if now - self._last_state_write > 1.0:
            self._last_state_write = now
            self._write_state()
            self._flush_logs()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for deployment in (self.green, self.blue):
            if deployment is not None:
                deployment.stop()
        if self.capture is not None:
            self.capture.close()
        self._save_bandit()
        self._flush_logs()
        if self._server_thread is not None:
            self._server_thread.join(timeout=30)

    def _delete(self) -> None:
        self.router.table = None
        self._shutdown()
        self.blue = self.green = None
        self.capture = None
        repo.delete_endpoint(self.db, self.name)

    # -- router ---------------------------------------------------------------------------------
    def _start_router(self) -> str:
        host = os.environ.get("FORGEML_ENDPOINT_BIND_HOST", "127.0.0.1")
        sock = bind_socket(host, 0)
        config = uvicorn.Config(self.router, interface="asgi3", lifespan="on", log_config=None, log_level="warning",
                                access_log=False, server_header=False, date_header=False, timeout_keep_alive=75,
                                timeout_graceful_shutdown=25)
        server = uvicorn.Server(config)
        self._server = server
        self._server_thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="forgeml-router",
                                               daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the endpoint router did not start")
            time.sleep(0.01)
        return socket_url(sock)

    def _publish(self) -> None:
        """Hand the router a new table reflecting the fleets as they are now."""
        if self.blue is None:
            self.router.table = None
            return
        self.router.table = RoutingTable(
            blue=self.blue.routing(),
            shadows=tuple(_route(f) for f in self.blue.shadows),
            green=self.green.routing() if self.green is not None else None,
            green_fraction=self.green_fraction,
            bandit=self.bandit,
            capture=self.capture,
        )

    def _close_pools(self, instances: list[Instance]) -> None:
        loop = self.router.loop
        if loop is None:
            return
        import asyncio

        for instance in instances:
            asyncio.run_coroutine_threadsafe(instance.pool.close(), loop)

    # -- deploying ------------------------------------------------------------------------------
    def _deploy(self, config: dict[str, Any], retained: dict[str, dict[str, Any]],
                exclude: tuple[str, ...] = ()) -> Deployment:
        """Stage and start a config's fleets; ``retained`` variants keep their current weight/count."""
        def fleet(variant: dict[str, Any]) -> VariantFleet:
            model = self.platform.models.describe_model(variant["ModelName"])
            folder = self.folder / "fleets" / f"{config['EndpointConfigName']}-{variant['VariantName']}-{time.time_ns()}"
            return VariantFleet(variant, model, folder, self.platform.artifacts, on_output=self._worker_output)

        production = [fleet(v) for v in config["ProductionVariants"]]
        shadows = [fleet(v) for v in config.get("ShadowProductionVariants", [])]
        weights: dict[str, float] = {}
        counts: dict[str, int] = {}
        for variant in config["ProductionVariants"] + config.get("ShadowProductionVariants", []):
            name = variant["VariantName"]
            kept = retained.get(name, {})
            weights[name] = float(kept.get("CurrentWeight", variant.get("InitialVariantWeight", 1.0))) \
                if "DesiredWeight" not in exclude else float(variant.get("InitialVariantWeight", 1.0))
            counts[name] = int(kept.get("CurrentInstanceCount", variant.get("InitialInstanceCount", 1))) \
                if "DesiredInstanceCount" not in exclude else int(variant.get("InitialInstanceCount", 1))
        deployment = Deployment(config, production, shadows, weights, counts)
        deployment.start()
        return deployment

    def _configure_extras(self, config: dict[str, Any]) -> None:
        """Data capture and bandit routing, as the (new) config asks."""
        capture_config = config.get("DataCaptureConfig")
        if capture_config:
            settings = CaptureSettings.from_config(capture_config)
            if self.capture is None:
                self.capture = CaptureWriter(self.platform.artifacts, settings, self.name)
            else:
                self.capture.update(settings)
        elif self.capture is not None:
            self.capture.close()
            self.capture = None
        variants = [v["VariantName"] for v in config["ProductionVariants"]]
        if _tag(config, BANDIT_TAG) == "bandit" and len(variants) > 1:
            if self.bandit is None:
                self.bandit = self._load_bandit(variants)
            else:
                self.bandit.set_variants(variants)
        else:
            self.bandit = None

    def _bandit_path(self) -> Path:
        return self.folder / "bandit.json"

    def _load_bandit(self, variants: list[str]) -> ThompsonSampling:
        bandit = ThompsonSampling(variants)
        path = self._bandit_path()
        if path.exists():
            try:
                bandit = ThompsonSampling.from_state(json.loads(path.read_text()))
                bandit.set_variants(variants)
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable bandit state in %s", path)
        return bandit

    def _save_bandit(self) -> None:
        if self.bandit is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._bandit_path().write_text(json.dumps(self.bandit.to_state()))

    # -- updates --------------------------------------------------------------------------------
    def _update(self, pending: dict[str, Any]) -> None:
        if pending.get("Type") == "WeightsAndCapacities":
            self._update_weights_and_capacities(pending["Changes"])
        else:
            self._update_config(pending)

    def _finish_update(self, status: str = "InService", failure: str | None = None, **fields: Any) -> None:
        self._publish()
        repo.update_endpoint(self.db, self.name, status=status, pending_update=None, failure_reason=failure,
                             **self._state_fields(), **fields)

    def _update_weights_and_capacities(self, changes: list[dict[str, Any]]) -> None:
        assert self.blue is not None
        previous = dict(self.blue.weights), dict(self.blue.desired_counts)
        try:
            for change in changes:
                name = change["VariantName"]
                if change.get("DesiredWeight") is not None:
                    self.blue.weights[name] = float(change["DesiredWeight"])
                if change.get("DesiredInstanceCount") is not None:
                    self._scale(name, int(change["DesiredInstanceCount"]))
        except FleetError as exc:
            repo.update_endpoint(self.db, self.name, status="RollingBack")
            self.blue.weights, counts = previous
            for name, count in counts.items():
                self._scale(name, count, may_fail=False)
            self._finish_update(failure=f"ClientError: the update was rolled back: {exc}")
            return
        self._finish_update()

    def _update_config(self, pending: dict[str, Any]) -> None:
        assert self.blue is not None
        config = self.platform.endpoint_configs.describe_endpoint_config(pending["EndpointConfigName"])
        deployment_config = pending.get("DeploymentConfig")
        retained = self._variant_summaries(self.blue) if pending.get("RetainAllVariantProperties") else {}
        excluded = tuple(pending.get("ExcludeRetainedVariantProperties") or ())
        try:
            self.green = self._deploy(config, {k: v for k, v in retained.items()}, excluded)
        except FleetError as exc:
            self.green = None
            self._finish_update(failure=f"ClientError: the update to {config['EndpointConfigName']} failed and the "
                                        f"endpoint keeps serving {self.blue.config['EndpointConfigName']}: {exc}")
            return
        capacity = sum(self.green.desired_counts[f.name] for f in self.green.production)
        plan = traffic_plan(deployment_config, capacity)
        for fraction, bake in plan.steps:
            self.green_fraction = fraction
            self._publish()
            alarm = self._bake(bake, plan.alarms)
            if alarm is not None:
                self._roll_back(alarm, config["EndpointConfigName"])
                return
            if self.terminating.is_set() or self._delete_requested():
                return
        alarm = self._bake(plan.termination_wait, plan.alarms)
        if alarm is not None:
            self._roll_back(alarm, config["EndpointConfigName"])
            return
        old, self.blue, self.green, self.green_fraction = self.blue, self.green, None, 0.0
        self._configure_extras(config)
        self._publish()
        old.stop()
        self._finish_update(config_name=config["EndpointConfigName"],
                            last_deployment_config=deployment_config or None)

    def _bake(self, seconds: float, alarms: tuple[str, ...]) -> str | None:
        """Serve for ``seconds`` while watching the rollback alarms; the reason if one fires."""
        deadline = time.monotonic() + seconds
        while True:
            fired = self._alarm_fired(alarms)
            if fired is not None:
                return fired
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.terminating.is_set() or self._delete_requested():
                return None
            self.wake_event.wait(min(TICK_SECONDS, remaining))
            self.wake_event.clear()
            self._tend()

    def _alarm_fired(self, alarms: tuple[str, ...]) -> str | None:
        if not alarms or self.green is None:
            return None
        green = self.green

        def lookup(dimensions: dict[str, str]) -> InvocationMetrics | None:
            if dimensions.get("EndpointName", self.name) != self.name:
                return None
            variant = dimensions.get("VariantName")
            if variant is None:
                return InvocationMetrics.combined([f.metrics for f in green.production])
            fleet = green.fleet(variant)
            return fleet.metrics if fleet is not None else None

        def instances(dimensions: dict[str, str]) -> int:
            variant = dimensions.get("VariantName")
            fleets = [green.fleet(variant)] if variant else green.production
            return max(1, sum(len(f.instances) for f in fleets if f is not None))

        for name in alarms:
            alarm = self.platform.alarms.get_alarm(name)
            if alarm is None:
                continue
            state, reason = evaluate_alarm(alarm, lookup, instances)
            if state != alarm.get("StateValue"):
                self.platform.alarms.set_alarm_state(name, state, reason)
            if state == "ALARM":
                return f"the alarm {name} is in ALARM: {reason}"
        return None

    def _roll_back(self, reason: str, config_name: str) -> None:
        assert self.green is not None and self.blue is not None
        repo.update_endpoint(self.db, self.name, status="RollingBack")
        self.green_fraction = 0.0
        self._publish()
        self.green.stop()
        self.green = None
        self._finish_update(failure=f"ClientError: the update to {config_name} was rolled back and the endpoint "
                                    f"serves {self.blue.config['EndpointConfigName']} again: {reason}")

    def _delete_requested(self) -> bool:
        row = repo.get_endpoint(self.db, self.name)
        return row is None or bool(row["delete_requested"])

    # -- fleet care -----------------------------------------------------------------------------
    def _deployments(self) -> list[Deployment]:
        return [d for d in (self.blue, self.green) if d is not None]

    def _replace_dead(self) -> None:
        for deployment in self._deployments():
            for fleet in deployment.fleets:
                dead = fleet.reap()
                if not dead:
                    continue
                for instance in dead:
                    log.warning("instance %s of variant %s exited (status %s); replacing it. Its last output:\n%s",
                                instance.instance_id, fleet.name, instance.process.process.poll(),
                                "\n".join(list(instance.process.output)[-20:]))
                self._publish()
                self._close_pools(dead)
                try:
                    fleet.start(len(dead))
                except FleetError as exc:
                    log.error("could not replace instances of %s: %s", fleet.name, exc)
                self._publish()

    def _scale(self, variant: str, count: int, *, may_fail: bool = True) -> None:
        assert self.blue is not None
        fleet = self.blue.fleet(variant)
        if fleet is None:
            return
        self.blue.desired_counts[variant] = count
        current = len(fleet.instances)
        if count > current:
            try:
                fleet.start(count - current)
            except FleetError:
                if may_fail:
                    raise
        elif count < current:
            removed = fleet.remove(current - count)
            self._publish()  # no new request reaches them; in-flight ones finish before SIGTERM ends them
            self._close_pools(removed)
            threading.Thread(target=stop_instances, args=(removed,), daemon=True).start()
        self._publish()

    def _autoscale(self) -> None:
        """Apply target-tracking policies (checked a few times per metric window, at most once a second)."""
        now = time.time()
        window = metric_window_seconds()
        if self.blue is None or now - self._last_autoscale < min(1.0, window / 4):
            return
        self._last_autoscale = now
        for variant, tracker in self.platform.autoscaling.tracking_for_endpoint(self.name).items():
            kept = self.trackers.get(variant)
            if kept is not None and kept.settings() == tracker.settings():
                tracker = kept  # keeps its cooldown clock
            self.trackers[variant] = tracker
            fleet = self.blue.fleet(variant)
            if fleet is None:
                continue
            current = self.blue.desired_counts[variant]
            metric = tracker.measure(fleet.metrics, current, window, now)
            desired = tracker.desired(current, metric, now)
            if desired is None or desired == current:
                continue
            description, cause = tracker.activity(current, desired, metric)
            try:
                self._scale(variant, desired)
            except FleetError as exc:
                self.platform.autoscaling.record_activity(tracker.resource_id, description, f"{cause}; failed: {exc}",
                                                          "Failed")
                continue
            tracker.record_scaling("out" if desired > current else "in", now)
            self.platform.autoscaling.record_activity(tracker.resource_id, description, cause)
            self._write_state()

    # -- state for DescribeEndpoint -------------------------------------------------------------
    def _variant_summaries(self, deployment: Deployment) -> dict[str, dict[str, Any]]:
        shares = self.bandit.shares() if self.bandit is not None and deployment is self.blue else None
        summaries = {}
        for fleet in deployment.fleets:
            weight = deployment.weights[fleet.name]
            current_weight = shares.get(fleet.name, weight) if shares else weight
            summaries[fleet.name] = {
                "VariantName": fleet.name,
                "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": fleet_time(fleet)}
                                   for image in fleet.images],
                "CurrentWeight": round(current_weight, 6),
                "DesiredWeight": weight,
                "CurrentInstanceCount": len(fleet.instances),
                "DesiredInstanceCount": deployment.desired_counts[fleet.name],
            }
        return summaries

    def _state_fields(self) -> dict[str, Any]:
        if self.blue is None:
            return {}
        summaries = self._variant_summaries(self.blue)
        shadow_names = {f.name for f in self.blue.shadows}
        return {
            "variants": [s for name, s in summaries.items() if name not in shadow_names],
            "shadow_variants": [s for name, s in summaries.items() if name in shadow_names] or None,
            "capture_summary": self.capture.summary() if self.capture is not None else None,
        }

    def _write_state(self) -> None:
        fields = self._state_fields()
        if fields != self._published:
            self._published = fields
            repo.update_endpoint(self.db, self.name, **fields)
        self._save_bandit()


def fleet_time(fleet: VariantFleet) -> float:
    return min((i.started_at for i in fleet.instances), default=time.time())


def _tag(config: dict[str, Any], key: str) -> str | None:
    return next((t.get("Value") for t in config.get("Tags") or [] if t.get("Key") == key), None)

