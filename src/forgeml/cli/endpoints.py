"""``forgeml deploy`` and ``forgeml endpoints list|describe|invoke|update|logs|delete``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from forgeml.cli.render import console, short_time, to_json
from forgeml.errors import ValidationException
from forgeml.service.names import name_from_base
from forgeml.service.platform import Platform

DONE = ("InService", "Failed")


def model_from_training_job(platform: Platform, job_name: str, model_name: str) -> str:
    """CreateModel from a completed training job's artifact and image (script mode keeps its code)."""
    job = platform.training_jobs.describe_training_job(job_name)
    if job["TrainingJobStatus"] != "Completed":
        raise ValidationException(f"Training job {job_name} is {job['TrainingJobStatus']}; only a Completed job "
                                  "has a model to deploy.")
    container: dict[str, Any] = {"Image": job["AlgorithmSpecification"]["TrainingImage"],
                                 "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]}
    hyperparameters = job.get("HyperParameters", {})
    if "sagemaker_program" in hyperparameters:
        container["Environment"] = {"SAGEMAKER_PROGRAM": json.loads(hyperparameters["sagemaker_program"]),
                                    "SAGEMAKER_SUBMIT_DIRECTORY": json.loads(hyperparameters["sagemaker_submit_directory"])}
    platform.models.create_model({"ModelName": model_name, "PrimaryContainer": container,
                                  "ExecutionRoleArn": job["RoleArn"]})
    return model_name


def wait_for_endpoint(platform: Platform, name: str) -> dict[str, Any]:
    """Print SageMaker's progress line (``-`` while it works, ``!`` once InService) until it settles."""
    while True:
        described = platform.endpoints.describe_endpoint(name)
        status = described["EndpointStatus"]
        if status in DONE:
            print("!" if status == "InService" else "*", flush=True)
            return described
        print("-", end="", flush=True)
        time.sleep(0.5)


def cmd_deploy(args: argparse.Namespace) -> int:
    platform = Platform.get()
    if bool(args.model) == bool(args.training_job):
        raise SystemExit("forgeml deploy: give exactly one of --model and --training-job")
    endpoint = args.endpoint_name or name_from_base(args.model or args.training_job)
    model = args.model or model_from_training_job(platform, args.training_job, endpoint)
    config: dict[str, Any] = {"EndpointConfigName": endpoint, "ProductionVariants": [{
        "VariantName": args.variant_name, "ModelName": model, "InitialInstanceCount": args.instance_count,
        "InstanceType": args.instance_type, "InitialVariantWeight": 1.0}]}
    if args.capture_percent is not None:
        destination = args.capture_destination or "s3://forgeml-data-capture/model-monitor/data-capture"
        config["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": args.capture_percent, "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}
    platform.endpoint_configs.create_endpoint_config(config)
    platform.endpoints.create_endpoint({"EndpointName": endpoint, "EndpointConfigName": endpoint})
    console.print(f"Creating endpoint [bold]{endpoint}[/] (model {model})")
    described = wait_for_endpoint(platform, endpoint)
    if described["EndpointStatus"] == "Failed":
        console.print(f"[red]Failed[/]: {described.get('FailureReason')}")
        return 1
    console.print(f"[bold]{endpoint}[/] is InService. Try: forgeml endpoints invoke {endpoint} --body '...' "
                  "--content-type text/csv")
    return 0


def endpoints_table(summaries: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False)
    for column in ("Endpoint", "Status", "Created", "Modified"):
        table.add_column(column)
    for summary in summaries:
        table.add_row(summary["EndpointName"], summary["EndpointStatus"], short_time(summary["CreationTime"]),
                      short_time(summary["LastModifiedTime"]))
    return table


def _body(args: argparse.Namespace) -> bytes:
    if (args.body is None) == (args.file is None):
        raise SystemExit("forgeml endpoints invoke: give exactly one of --body and --file (- reads stdin)")
    if args.body is not None:
        return str(args.body).encode()
    return sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"forgeml endpoints update: {what} must look like VARIANT=VALUE, got {item!r}")
        result[key] = value
    return result


def _update(platform: Platform, args: argparse.Namespace) -> None:
    weights = _pairs(args.weight, "--weight")
    counts = _pairs(args.instance_count, "--instance-count")
    if args.config and (weights or counts):
        raise SystemExit("forgeml endpoints update: --config replaces the fleet; use --weight/--instance-count alone")
    if args.config:
        request: dict[str, Any] = {"EndpointName": args.name, "EndpointConfigName": args.config}
        if args.canary_percent or args.linear_percent:
            kind, size = ("CANARY", args.canary_percent) if args.canary_percent else ("LINEAR", args.linear_percent)
            routing = {"Type": kind, "WaitIntervalInSeconds": args.wait_interval,
                       ("CanarySize" if kind == "CANARY" else "LinearStepSize"): {"Type": "CAPACITY_PERCENT",
                                                                                  "Value": size}}
            request["DeploymentConfig"] = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}}
            if args.rollback_alarm:
                request["DeploymentConfig"]["AutoRollbackConfiguration"] = {
                    "Alarms": [{"AlarmName": alarm} for alarm in args.rollback_alarm]}
        platform.endpoints.update_endpoint(request)
    elif weights or counts:
        changes = [{"VariantName": v, **({"DesiredWeight": float(weights[v])} if v in weights else {}),
                    **({"DesiredInstanceCount": int(counts[v])} if v in counts else {})}
                   for v in sorted(set(weights) | set(counts))]
        platform.endpoints.update_endpoint_weights_and_capacities({"EndpointName": args.name,
                                                                   "DesiredWeightsAndCapacities": changes})
    else:
        raise SystemExit("forgeml endpoints update: give --config, or --weight/--instance-count")
    console.print(f"Updating {args.name}")
    described = wait_for_endpoint(platform, args.name)
    console.print(f"{args.name}: {described['EndpointStatus']} with {described['EndpointConfigName']}"
                  + (f" ({described['FailureReason']})" if described.get("FailureReason") else ""))


def _print_logs(platform: Platform, name: str, follow: bool) -> None:
    """What the endpoint's workers printed, ``<variant>/<instance>`` first; ``follow`` keeps going until deleted."""
    cursor = 0
    while True:
        for event in platform.endpoints.log_events(name, cursor):
            print(f"{event['logStreamName']}  {event['message']}", flush=True)
            cursor = event["id"]
        if not follow or not platform.endpoints.exists(name):
            return
        time.sleep(0.5)


def cmd_endpoints(args: argparse.Namespace) -> int:
    platform = Platform.get()
    command = args.endpoints_command
    if command == "list":
        console.print(endpoints_table(platform.endpoints.list_endpoints(MaxResults=min(args.max, 100))["Endpoints"]))
    elif command == "describe":
        print(to_json(platform.endpoints.describe_endpoint(args.name)))
    elif command == "invoke":
        answer = platform.runtime.invoke_endpoint(
            EndpointName=args.name, Body=_body(args), ContentType=args.content_type, Accept=args.accept,
            TargetVariant=args.target_variant, CustomAttributes=args.custom_attributes)
        console.print(f"[dim]{answer['InvokedProductionVariant']} answered {answer['ContentType']}[/]", highlight=False)
        sys.stdout.buffer.write(answer["Body"].read())
        sys.stdout.buffer.write(b"\n")
    elif command == "delete":
        platform.endpoints.delete_endpoint(args.name)
        console.print(f"Deleting {args.name}")
    elif command == "logs":
        _print_logs(platform, args.name, args.follow)
    elif command == "update":
        _update(platform, args)
    return 0


def add_parsers(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="create an endpoint for a model or a training job's model")
    deploy.add_argument("--model", help="an existing model's name")
    deploy.add_argument("--training-job", help="a Completed training job whose model to deploy")
    deploy.add_argument("--endpoint-name")
    deploy.add_argument("--variant-name", default="AllTraffic")
    deploy.add_argument("--instance-count", type=int, default=1, help="worker processes serving the model")
    deploy.add_argument("--instance-type", default="ml.m5.large")
    deploy.add_argument("--capture-percent", type=int, help="turn on data capture at this sampling percentage")
    deploy.add_argument("--capture-destination", help="s3:// URI for captured requests")
    deploy.set_defaults(func=cmd_deploy)

    endpoints = sub.add_parser("endpoints", help="endpoints: list, describe, invoke, update, logs, delete")
    endpoints_sub = endpoints.add_subparsers(dest="endpoints_command", required=True)
    listing = endpoints_sub.add_parser("list")
    listing.add_argument("--max", type=int, default=50)
    for name in ("describe", "delete"):
        endpoints_sub.add_parser(name).add_argument("name")
    logs = endpoints_sub.add_parser("logs", help="what the endpoint's model servers printed")
    logs.add_argument("name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the endpoint is deleted")
    invoke = endpoints_sub.add_parser("invoke", help="send one request and print the answer")
    invoke.add_argument("name")
    invoke.add_argument("--body", help="the request body as text")
    invoke.add_argument("--file", help="a file holding the request body (- for stdin)")
    invoke.add_argument("--content-type", default="text/csv")
    invoke.add_argument("--accept")
    invoke.add_argument("--target-variant")
    invoke.add_argument("--custom-attributes")
    update = endpoints_sub.add_parser("update", help="deploy another config (blue/green) or change weights/counts")
    update.add_argument("name")
    update.add_argument("--config", help="the endpoint config to move to")
    update.add_argument("--canary-percent", type=int, help="shift this share first, then the rest")
    update.add_argument("--linear-percent", type=int, help="shift this share per step")
    update.add_argument("--wait-interval", type=int, default=0, help="seconds to bake each step")
    update.add_argument("--rollback-alarm", action="append", help="roll back if this alarm fires while baking")
    update.add_argument("--weight", action="append", metavar="VARIANT=WEIGHT")
    update.add_argument("--instance-count", action="append", metavar="VARIANT=COUNT")
    endpoints.set_defaults(func=cmd_endpoints)
