"""The tuning controller: runs one hyperparameter tuning job from InProgress to its end.

It is a long-lived process started by the executor (like a training job's runner). Each tick it
refreshes its trials from the store (status, intermediate and final objective values), asks the
stopping rules about running trials, checks the completion criteria, and asks the strategy for new
proposals while parallel slots and the job budget allow. Every trial is an ordinary training job
named ``<tuning-job>-<NNN>-<8 hex>``, so everything the platform does for training jobs (logs,
metrics, stop, artifacts) applies to trials unchanged.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from forgeml.errors import ForgeMLError
from forgeml.service.platform import Platform
from forgeml.service.tuning_requests import EPOCH_NAMES, trial_resource_config
from forgeml.store import training_jobs as training_repo
from forgeml.store import tuning_jobs as repo
from forgeml.tuning.base import COMPLETED, FAILED, PENDING, STOPPED, Proposal, Strategy, Trial
from forgeml.tuning.completion import REASON_CONVERGED, CompletionCriteria
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.stopping import create_stopping_rule
from forgeml.tuning.strategies import create_strategy

TICK_SECONDS = 0.1
log = logging.getLogger("forgeml.tuning")


@dataclass
class DefinitionState:
    name: str | None
    definition: dict[str, Any]
    objective: dict[str, str]
    space: SearchSpace
    strategy: Strategy
    trials: list[Trial] = field(default_factory=list)


class TuningController:
    def __init__(self, platform: Platform, name: str) -> None:
        self.platform = platform
        self.db = platform.db
        self.name = name
        row = repo.get_tuning_job(self.db, name)
        if row is None:
            raise LookupError(f"tuning job {name} does not exist")
        self.request: dict[str, Any] = row["request"]
        self.config: dict[str, Any] = self.request["HyperParameterTuningJobConfig"]
        self.creation_time: float = row["creation_time"]
        limits = self.config["ResourceLimits"]
        self.max_jobs: int = limits["MaxNumberOfTrainingJobs"]
        self.max_parallel: int = limits["MaxParallelTrainingJobs"]
        self.max_runtime: float | None = limits.get("MaxRuntimeInSeconds")
        self.wake_event = threading.Event()
        self.job_names: dict[int, str] = {}  # trial number -> training job name
        self.trial_definition: dict[int, DefinitionState] = {}
        self.seen_intermediate: dict[int, int] = {}
        self._proposals_ran_out = False
        self.states = self._definitions()
        first = self.states[0]
        self.minimize = first.objective["Type"] == "Minimize"
        self.stopping_rule = create_stopping_rule(self.config.get("TrainingJobEarlyStoppingType", "Off"),
                                                  minimize=self.minimize)
        self.criteria = CompletionCriteria.from_request(self.config.get("TuningJobCompletionCriteria"), self.minimize)

    def wake(self) -> None:
        self.wake_event.set()

    # -- set-up -----------------------------------------------------------------------------------
    def _definitions(self) -> list[DefinitionState]:
        raw = self.request.get("TrainingJobDefinitions") or [self.request["TrainingJobDefinition"]]
        prior = self._warm_start_trials()
        states = []
        for definition in raw:
            ranges = definition.get("HyperParameterRanges") or self.config["ParameterRanges"]
            objective = definition.get("TuningObjective") or self.config["HyperParameterTuningJobObjective"]
            space = SearchSpace.from_parameter_ranges(ranges)
            share = max(1, self.max_jobs // len(raw))
            # Grid skips combinations the parents ran only when they ran on the same data and algorithm
            identical = (self.request.get("WarmStartConfig") or {}).get("WarmStartType") == "IdenticalDataAndAlgorithm"
            parents = prior if self.config["Strategy"] != "Grid" or identical else []
            strategy = create_strategy(
                self.config["Strategy"], space, minimize=objective["Type"] == "Minimize",
                seed=self.config.get("RandomSeed"), max_jobs=share, prior_trials=parents,
                hyperband_config=self.config.get("StrategyConfig", {}).get("HyperbandStrategyConfig"),
            )
            states.append(DefinitionState(definition.get("DefinitionName"), definition, dict(objective), space, strategy))
        return states

    def _warm_start_trials(self) -> list[Trial]:
        warm = self.request.get("WarmStartConfig")
        if not warm:
            return []
        prior: list[Trial] = []
        for parent in warm["ParentHyperParameterTuningJobs"]:
            for trial in repo.trials(self.db, parent["HyperParameterTuningJobName"]):
                if trial["objective_value"] is None:
                    continue
                prior.append(Trial(number=-len(prior) - 1, hyperparameters=dict(trial["tuned_hyperparameters"]),
                                   status=COMPLETED, objective=trial["objective_value"]))
        return prior

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        repo.update_fields(self.db, self.name, runner_pid=_pid())
        try:
            self._loop()
        except Exception as exc:  # the controller's own fault: end the tuning job with the reason
            log.exception("tuning controller failed")
            self._stop_running()
            self._finish("Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
            raise

    def _loop(self) -> None:
        stopping_reason: tuple[str, str | None] | None = None
        while True:
            self._refresh()
            row = repo.get_tuning_job(self.db, self.name) or {}
            if stopping_reason is None:
                if row.get("stop_requested"):
                    stopping_reason = ("Stopped", None)
                elif self.max_runtime is not None and time.time() - self.creation_time > self.max_runtime:
                    stopping_reason = ("Stopped", None)
                    repo.update_fields(self.db, self.name, completion_details={**self._details(),
                                                                              "Reason": "MaxRuntimeInSeconds reached"})
                else:
                    reason = self.criteria.check(self._all_trials())
                    if reason is not None:
                        stopping_reason = ("Completed", None)
                        details = {**self._details(), "Reason": reason}
                        if reason == REASON_CONVERGED:
                            details["ConvergenceDetectedTime"] = time.time()
                        repo.update_fields(self.db, self.name, completion_details=details)
                if stopping_reason is not None:
                    self._stop_running()
            if stopping_reason is None:
                self._apply_stopping_rules()
                self._launch_new()
            running = [t for t in self._all_trials() if t.status == PENDING]
            if not running:
                if stopping_reason is not None:
                    self._finish(*stopping_reason)
                    return
                if self._exhausted():
                    self._finish_naturally()
                    return
            self.wake_event.wait(TICK_SECONDS)
            self.wake_event.clear()

    def _all_trials(self) -> list[Trial]:
        return sorted((t for s in self.states for t in s.trials), key=lambda t: t.number)

    def _exhausted(self) -> bool:
        return len(self.job_names) >= self.max_jobs or self._proposals_ran_out

    # -- trials -----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        for state in self.states:
            metric = state.objective["MetricName"]
            for trial in state.trials:
                if trial.status != PENDING:
                    continue
                job_name = self.job_names[trial.number]
                job = training_repo.get_job(self.db, job_name)
                if job is None:
                    continue
                if job["status"] in training_repo.ACTIVE_STATUSES:
                    job = self.platform.training_jobs.reconcile(job)
                series = [p["value"] for p in training_repo.metric_series(self.db, job_name, metric)]
                trial.intermediate = series
                if job["status"] in training_repo.TERMINAL_STATUSES:
                    trial.status = {"Completed": COMPLETED, "Stopped": STOPPED}.get(job["status"], FAILED)
                    trial.objective = series[-1] if series and trial.status != FAILED else None
                    objective_status = "Succeeded" if trial.objective is not None else "Failed"
                    repo.set_trial_objective(self.db, job_name, objective_status, trial.objective)

    def _apply_stopping_rules(self) -> None:
        for state in self.states:
            for trial in state.trials:
                if trial.status != PENDING or len(trial.intermediate) <= self.seen_intermediate.get(trial.number, 0):
                    continue
                self.seen_intermediate[trial.number] = len(trial.intermediate)
                others = [t for t in state.trials if t.number != trial.number]
                stop = state.strategy.should_stop(trial, state.trials)
                if not stop and self.stopping_rule is not None:
                    stop = self.stopping_rule.should_stop(trial, others + [trial])
                if stop:
                    self._stop_trial(trial)

    def _stop_trial(self, trial: Trial) -> None:
        with suppress(ForgeMLError):  # it may have finished on its own in the meantime
            self.platform.training_jobs.stop_training_job(self.job_names[trial.number])

    def _stop_running(self) -> None:
        for trial in self._all_trials():
            if trial.status == PENDING:
                self._stop_trial(trial)

    def _launch_new(self) -> None:
        running = sum(1 for t in self._all_trials() if t.status == PENDING)
        free = min(self.max_parallel - running, self.max_jobs - len(self.job_names))
        while free > 0:
            state = self.states[len(self.job_names) % len(self.states)]
            proposals = state.strategy.suggest(list(state.trials), 1)
            if not proposals:
                # nothing new while trials run (a small space fully in flight): ask again next tick;
                # nothing new with none running: the strategy has covered its space
                self._proposals_ran_out = running == 0
                return
            self._launch(state, proposals[0])
            running += 1
            free -= 1

    def _launch(self, state: DefinitionState, proposal: Proposal) -> None:
        number = len(self.job_names) + 1
        job_name = f"{self.name}-{number:03d}-{secrets.token_hex(4)}"
        definition = state.definition
        hyperparameters = {**definition.get("StaticHyperParameters", {}), **proposal.hyperparameters,
                           "_tuning_objective_metric": state.objective["MetricName"]}
        if proposal.resource is not None:
            static = definition.get("StaticHyperParameters", {})
            resource_name = next((n for n in EPOCH_NAMES if n in static), "epochs")
            hyperparameters[resource_name] = str(proposal.resource)
        request = {k: v for k, v in definition.items()
                   if k not in ("StaticHyperParameters", "HyperParameterRanges", "TuningObjective", "DefinitionName",
                                "HyperParameterTuningResourceConfig")}
        request.update({"TrainingJobName": job_name, "HyperParameters": hyperparameters,
                        "ResourceConfig": trial_resource_config(definition)})
        trial = Trial(number=number, hyperparameters=dict(proposal.hyperparameters), resource=proposal.resource)
        self.job_names[number] = job_name
        state.trials.append(trial)
        repo.add_trial(self.db, {
            "tuning_job_name": self.name, "number": number, "training_job_name": job_name,
            "definition_name": state.name, "tuned_hyperparameters": proposal.hyperparameters,
            "resource": proposal.resource, "objective_status": "Pending", "objective_value": None,
        })
        try:
            self.platform.training_jobs.create_training_job(request, tuning_job_name=self.name)
        except ForgeMLError as exc:  # counts as a failed trial; the tuning job goes on
            trial.status = FAILED
            repo.set_trial_objective(self.db, job_name, "Failed", None)
            log.warning("trial %s could not be created: %s", job_name, exc)

    # -- the end ----------------------------------------------------------------------------------
    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"NumberOfTrainingJobsObjectiveNotImproving":
                                   self.criteria.jobs_not_improving(self._all_trials())}
        return details

    def _finish_naturally(self) -> None:
        trials = self._all_trials()
        if any(t.objective is not None for t in trials):
            self._finish("Completed", None)
            return
        reasons = [training_repo.get_job(self.db, self.job_names[t.number]) for t in trials]
        first = next((r["failure_reason"] for r in reasons if r and r.get("failure_reason")), None)
        self._finish("Failed", f"All training jobs failed. The first failure: {first or 'no objective metric was reported'}")

    def _finish(self, status: str, failure_reason: str | None) -> None:
        row = repo.get_tuning_job(self.db, self.name) or {}
        details = {**(row.get("completion_details") or {}), **self._details()}
        fields: dict[str, Any] = {"end_time": time.time(), "completion_details": details}
        if failure_reason:
            fields["failure_reason"] = failure_reason[:1024]
        repo.set_status(self.db, self.name, status, only_if=repo.ACTIVE, **fields)


def _pid() -> int:
    import os

    return os.getpid()
