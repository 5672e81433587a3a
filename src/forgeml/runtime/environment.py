"""The environment a job's code sees: SageMaker's platform variables and the toolkit's ``SM_*``.

Matches the sagemaker-training toolkit: reserved ``sagemaker_*`` hyperparameters are split off,
values are JSON-decoded (falling back to the raw string), every user hyperparameter becomes
``SM_HP_<NAME>`` and a ``--name value`` argument, and ``SM_TRAINING_ENV`` holds the whole picture.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from forgeml.runtime.layout import HostLayout

RESERVED = frozenset({
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics", "sagemaker_region",
    "sagemaker_container_log_level", "sagemaker_job_name", "default_user_module_name", "_tuning_objective_metric",
    "sagemaker_s3_output",
})


def decode_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw


def split_hyperparameters(raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, additional framework parameters, reserved values), all JSON-decoded."""
    user: dict[str, Any] = {}
    framework: dict[str, Any] = {}
    reserved: dict[str, Any] = {}
    for key, value in raw.items():
        decoded = decode_value(value)
        if key in RESERVED:
            reserved[key] = decoded
        elif key.startswith("sagemaker_"):
            framework[key] = decoded
        else:
            user[key] = decoded
    return user, framework, reserved


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """``--key value`` pairs sorted by key, values as the toolkit renders them."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"-{key}" if len(key) == 1 else f"--{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(str(value))
    return args


@dataclass(frozen=True)
class JobIdentity:
    job_name: str
    job_arn: str
    region: str
    instance_type: str
    num_cpus: int
    num_gpus: int
    hosts: list[str]


def training_environment(
    identity: JobIdentity,
    layout: HostLayout,
    raw_hyperparameters: dict[str, str],
    input_config: dict[str, Any],
    resource_config: dict[str, Any],
    user_environment: dict[str, str],
) -> tuple[dict[str, str], list[str]]:
    """The process environment and the user's command-line arguments for one host."""
    user, framework, reserved = split_hyperparameters(raw_hyperparameters)
    program = str(reserved.get("sagemaker_program", ""))
    module_name = program[:-3] if program.endswith(".py") else program
    channels = sorted(input_config)
    channel_dirs = {name: str(layout.channel_dir(name)) for name in channels}
    args = to_cmd_args(user)
    training_env = {
        "additional_framework_parameters": framework,
        "channel_input_dirs": channel_dirs,
        "current_host": layout.host,
        "current_instance_type": identity.instance_type,
        "current_instance_group": "homogeneousCluster",
        "hosts": identity.hosts,
        "hyperparameters": user,
        "input_config_dir": str(layout.config_dir),
        "input_data_config": input_config,
        "input_dir": str(layout.input_dir),
        "is_master": layout.host == identity.hosts[0],
        "job_name": identity.job_name,
        "log_level": int(reserved.get("sagemaker_container_log_level", 20) or 20),
        "master_hostname": identity.hosts[0],
        "model_dir": str(layout.model_dir),
        "module_dir": str(layout.code_dir),
        "module_name": module_name,
        "network_interface_name": "eth0",
        "num_cpus": identity.num_cpus,
        "num_gpus": identity.num_gpus,
        "num_neurons": 0,
        "output_data_dir": str(layout.output_data_dir),
        "output_dir": str(layout.output_dir),
        "output_intermediate_dir": str(layout.intermediate_dir),
        "resource_config": resource_config,
        "user_entry_point": program,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "FORGEML_JOB_"))}
    env.update({
        "TRAINING_JOB_NAME": identity.job_name,
        "TRAINING_JOB_ARN": identity.job_arn,
        "SAGEMAKER_JOB_NAME": identity.job_name,
        "SAGEMAKER_REGION": identity.region,
        "CURRENT_HOST": layout.host,
        "SAGEMAKER_BASE_DIR": str(layout.root),
        "PYTHONUNBUFFERED": "1",
        "SM_MODEL_DIR": str(layout.model_dir),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(user, sort_keys=True),
        "SM_CURRENT_HOST": layout.host,
        "SM_HOSTS": json.dumps(identity.hosts),
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_NUM_CPUS": str(identity.num_cpus),
        "SM_NUM_GPUS": str(identity.num_gpus),
        "SM_NUM_NEURONS": "0",
        "SM_INPUT_DIR": str(layout.input_dir),
        "SM_INPUT_CONFIG_DIR": str(layout.config_dir),
        "SM_OUTPUT_DIR": str(layout.output_dir),
        "SM_OUTPUT_DATA_DIR": str(layout.output_data_dir),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(layout.intermediate_dir),
        "SM_MODULE_DIR": str(layout.code_dir),
        "SM_MODULE_NAME": module_name,
        "SM_USER_ENTRY_POINT": program,
        "SM_FRAMEWORK_MODULE": os.environ.get("SAGEMAKER_TRAINING_MODULE", ""),
        "SM_FRAMEWORK_PARAMS": json.dumps(framework, sort_keys=True),
        "SM_RESOURCE_CONFIG": json.dumps(resource_config),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_config),
        "SM_CURRENT_INSTANCE_TYPE": identity.instance_type,
        "SM_CURRENT_INSTANCE_GROUP": "homogeneousCluster",
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": json.dumps(identity.hosts),
        "SM_INSTANCE_GROUPS": json.dumps(["homogeneousCluster"]),
        "SM_IS_HETERO": "false",
        "SM_LOG_LEVEL": str(training_env["log_level"]),
        "SM_USER_ARGS": json.dumps(args),
        "SM_TRAINING_ENV": json.dumps(training_env, sort_keys=True),
        "SM_CHECKPOINT_DIR": str(layout.checkpoint_dir),
        "OMP_NUM_THREADS": str(identity.num_cpus),
        "OPENBLAS_NUM_THREADS": str(identity.num_cpus),
        "MKL_NUM_THREADS": str(identity.num_cpus),
    })
    for name, folder in channel_dirs.items():
        env[f"SM_CHANNEL_{name.upper()}"] = folder
    for key, value in user.items():
        env[f"SM_HP_{key.upper()}"] = _env_value(value)
    python_path = [str(layout.code_dir), *[p for p in sys.path if p]]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env.update(user_environment)
    return env, args
