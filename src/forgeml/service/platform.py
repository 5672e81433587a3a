"""The platform: configuration, metadata store, artifact store and executor, wired once.

Every entry point (SDK session, CLI, HTTP server, job runner) gets its services from a Platform,
so the backends are configuration: SQLite or PostgreSQL, a folder or S3, local processes or Ray.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from forgeml.config import Config
from forgeml.storage import ArtifactStore
from forgeml.store import Database

if TYPE_CHECKING:
    from forgeml.executors.base import Executor
    from forgeml.service.alarms import AlarmService
    from forgeml.service.autoscaling import AutoScalingService
    from forgeml.service.endpoint_configs import EndpointConfigService
    from forgeml.service.endpoints import EndpointService
    from forgeml.service.logs import LogService
    from forgeml.service.models import ModelService
    from forgeml.service.runtime import RuntimeService
    from forgeml.service.tags import TagService
    from forgeml.service.training_jobs import TrainingJobService
    from forgeml.service.transform_jobs import TransformJobService
    from forgeml.service.tuning_jobs import TuningJobService

_instances: dict[Config, Platform] = {}
_lock = threading.Lock()


class Platform:
    def __init__(self, config: Config) -> None:
        self.config = config
        config.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(config.database_url)
        self.artifacts = ArtifactStore(config)

    @classmethod
    def get(cls, config: Config | None = None) -> Platform:
        """The shared platform for a configuration (one engine per process and database)."""
        config = config or Config.from_env()
        with _lock:
            if config not in _instances:
                _instances[config] = cls(config)
            return _instances[config]

    @cached_property
    def executor(self) -> Executor:
        from forgeml.executors import create_executor

        return create_executor(self)

    @cached_property
    def training_jobs(self) -> TrainingJobService:
        from forgeml.service.training_jobs import TrainingJobService

        return TrainingJobService(self)

    @cached_property
    def tuning_jobs(self) -> TuningJobService:
        from forgeml.service.tuning_jobs import TuningJobService

        return TuningJobService(self)

    @cached_property
    def models(self) -> ModelService:
        from forgeml.service.models import ModelService

        return ModelService(self)

    @cached_property
    def endpoint_configs(self) -> EndpointConfigService:
        from forgeml.service.endpoint_configs import EndpointConfigService

        return EndpointConfigService(self)

    @cached_property
    def endpoints(self) -> EndpointService:
        from forgeml.service.endpoints import EndpointService

        return EndpointService(self)

    @cached_property
    def runtime(self) -> RuntimeService:
        from forgeml.service.runtime import RuntimeService

        return RuntimeService(self)

    @cached_property
    def transform_jobs(self) -> TransformJobService:
        from forgeml.service.transform_jobs import TransformJobService

        return TransformJobService(self)

    @cached_property
    def alarms(self) -> AlarmService:
        from forgeml.service.alarms import AlarmService

        return AlarmService(self)

    @cached_property
    def autoscaling(self) -> AutoScalingService:
        from forgeml.service.autoscaling import AutoScalingService

        return AutoScalingService(self)

    @cached_property
    def logs(self) -> LogService:
        from forgeml.service.logs import LogService

        return LogService(self)

    @cached_property
    def tags(self) -> TagService:
        from forgeml.service.tags import TagService

        return TagService(self)

    def arn(self, resource: str, name: str) -> str:
        from forgeml.service.names import arn

        return arn(self.config.region, self.config.account_id, resource, name)
