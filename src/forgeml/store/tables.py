"""Table definitions. Portable SQL only: the same schema runs on SQLite and PostgreSQL.

Times are stored as float epoch seconds (UTC) so that ordering and arithmetic are portable.
Append-only facts (status transitions, log events, metric points) live in their own tables so that
the job's runner and the control plane never overwrite each other's writes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "forgeml_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

training_jobs = Table(
    "training_jobs",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("secondary_status", String(32), nullable=False),
    Column("creation_time", Float, nullable=False, index=True),
    Column("last_modified_time", Float, nullable=False),
    Column("training_start_time", Float),
    Column("training_end_time", Float),
    Column("failure_reason", Text),
    Column("model_artifacts", Text),
    Column("billable_seconds", Integer),
    Column("tuning_job_name", String(63), index=True),
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("runner_host", String(255)),
    Column("runner_pid", Integer),
    # The validated CreateTrainingJob request, as SageMaker echoes it back in Describe.
    Column("request", JSON, nullable=False),
)

status_transitions = Table(
    "training_job_status_transitions",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_name", String(63), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Index("ix_transitions_job", "job_name", "id"),
)

log_events = Table(
    "log_events",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("log_group", String(128), nullable=False),
    Column("log_stream", String(512), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_log_events_stream", "log_group", "log_stream", "id"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_name", String(63), nullable=False),
    Column("metric_name", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_metric_points_job", "job_name", "metric_name", "id"),
)

tuning_jobs = Table(
    "tuning_jobs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("creation_time", Float, nullable=False, index=True),
    Column("last_modified_time", Float, nullable=False),
    Column("end_time", Float),
    Column("failure_reason", Text),
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("runner_pid", Integer),
    # TuningJobCompletionDetails and why the job ended, kept by the controller
    Column("completion_details", JSON),
    Column("request", JSON, nullable=False),
)

tuning_trials = Table(
    "tuning_trials",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("tuning_job_name", String(32), nullable=False),
    Column("number", Integer, nullable=False),
    Column("training_job_name", String(63), nullable=False, unique=True),
    Column("definition_name", String(64)),
    Column("tuned_hyperparameters", JSON, nullable=False),
    Column("resource", Integer),
    # the objective as the tuner judged it: Succeeded (value set) | Pending | Failed
    Column("objective_status", String(16), nullable=False),
    Column("objective_value", Float),
    Index("ix_tuning_trials_job", "tuning_job_name", "number"),
)

models = Table(
    "models",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("creation_time", Float, nullable=False, index=True),
    # the validated CreateModel request, as DescribeModel echoes it back
    Column("request", JSON, nullable=False),
)

endpoint_configs = Table(
    "endpoint_configs",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("creation_time", Float, nullable=False, index=True),
    Column("request", JSON, nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("config_name", String(63), nullable=False),
    Column("creation_time", Float, nullable=False, index=True),
    Column("last_modified_time", Float, nullable=False),
    Column("failure_reason", Text),
    Column("runner_pid", Integer),
    # where the endpoint's router listens (set by its host process once serving)
    Column("router_url", String(255)),
    # ProductionVariantSummary / ShadowProductionVariantSummary lists, kept by the host
    Column("variants", JSON),
    Column("shadow_variants", JSON),
    Column("capture_summary", JSON),
    # UpdateEndpoint / UpdateEndpointWeightsAndCapacities waiting for the host to carry it out
    Column("pending_update", JSON),
    Column("last_deployment_config", JSON),
    Column("delete_requested", Boolean, nullable=False, default=False),
    # the CreateEndpoint request (Tags, DeploymentConfig)
    Column("request", JSON, nullable=False),
)

transform_jobs = Table(
    "transform_jobs",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("arn", String(256), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("creation_time", Float, nullable=False, index=True),
    Column("last_modified_time", Float, nullable=False),
    Column("start_time", Float),
    Column("end_time", Float),
    Column("failure_reason", Text),
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("runner_pid", Integer),
    # the validated CreateTransformJob request, as DescribeTransformJob echoes it back
    Column("request", JSON, nullable=False),
)

# CloudWatch metric alarms (PutMetricAlarm), read by endpoint hosts for automatic rollback
metric_alarms = Table(
    "metric_alarms",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("arn", String(512), nullable=False),
    Column("creation_time", Float, nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("state_reason", Text, nullable=False),
    Column("state_updated", Float, nullable=False),
    Column("request", JSON, nullable=False),
)

# Application Auto Scaling: scalable targets (one per endpoint variant) and their policies
scalable_targets = Table(
    "scalable_targets",
    metadata,
    Column("resource_id", String(1600), primary_key=True),
    Column("scalable_dimension", String(128), primary_key=True),
    Column("creation_time", Float, nullable=False),
    Column("request", JSON, nullable=False),
)

scaling_policies = Table(
    "scaling_policies",
    metadata,
    Column("resource_id", String(1600), primary_key=True),
    Column("scalable_dimension", String(128), primary_key=True),
    Column("policy_name", String(256), primary_key=True),
    Column("arn", String(1600), nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("request", JSON, nullable=False),
)

scaling_activities = Table(
    "scaling_activities",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("activity_id", String(64), nullable=False, unique=True),
    Column("resource_id", String(1600), nullable=False),
    Column("scalable_dimension", String(128), nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("status_code", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Index("ix_scaling_activities_resource", "resource_id", "id"),
)
