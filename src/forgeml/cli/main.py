"""``forgeml`` commands: train, jobs, tuning, deploy, endpoints, transform, server, keys, info, demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from forgeml.cli.render import console, jobs_table, to_json
from forgeml.errors import ForgeMLError, UnexpectedStatusException


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, str]:
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"forgeml: {what} must look like NAME=VALUE, got {item!r}")
        result[key] = value
    return result


def cmd_train(args: argparse.Namespace) -> int:
    from forgeml.sdk.estimator import Estimator
    from forgeml.sdk.image_uris import retrieve
    from forgeml.sdk.inputs import TrainingInput
    from forgeml.sdk.session import Session

    session = Session()
    if bool(args.algorithm) == bool(args.entry_point):
        raise SystemExit("forgeml train: give exactly one of --algorithm and --entry-point")
    content_types = _pairs(args.content_type, "--content-type")
    channels: dict[str, Any] = {}
    for name, uri in _pairs(args.channel, "--channel").items():
        if "://" not in uri:
            uri = session.upload_data(uri, key_prefix=f"forgeml-cli/{name}")
        channels[name] = TrainingInput(uri, content_type=content_types.get(name),
                                       input_mode=args.input_mode if args.input_mode != "File" else None)
    metric_definitions = [{"Name": n, "Regex": r} for n, r in _pairs(args.metric, "--metric").items()]
    estimator = Estimator(
        image_uri=retrieve(args.algorithm) if args.algorithm else None,
        entry_point=args.entry_point, source_dir=args.source_dir,
        instance_type=args.instance_type, instance_count=args.instance_count,
        input_mode=args.input_mode, output_path=args.output_path, max_run=args.max_run,
        hyperparameters=_pairs(args.hp, "--hp"), metric_definitions=metric_definitions or None,
        sagemaker_session=session,
    )
    estimator.fit(channels or None, job_name=args.job_name, wait=not args.no_wait, logs=not args.no_wait)
    job = estimator.latest_training_job
    assert job is not None
    description = job.describe()
    console.print(f"[bold]{job.name}[/]: {description['TrainingJobStatus']}")
    for metric in description.get("FinalMetricDataList", []):
        console.print(f"  {metric['MetricName']} = {metric['Value']:.6g}")
    if description["TrainingJobStatus"] == "Completed":
        console.print(f"  model: {description['ModelArtifacts']['S3ModelArtifacts']}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from forgeml.sdk.session import Session

    session = Session()
    service = session.platform.training_jobs
    if args.jobs_command == "list":
        params: dict[str, Any] = {"MaxResults": min(args.max, 100)}
        if args.status:
            params["StatusEquals"] = args.status
        if args.name_contains:
            params["NameContains"] = args.name_contains
        console.print(jobs_table(service.list_training_jobs(**params)["TrainingJobSummaries"]))
    elif args.jobs_command == "describe":
        print(to_json(service.describe_training_job(args.name)))
    elif args.jobs_command == "stop":
        service.stop_training_job(args.name)
        console.print(f"Stopping {args.name}")
    elif args.jobs_command == "logs":
        _print_logs(session, args.name, args.follow)
    elif args.jobs_command == "metrics":
        for point in service.metric_series(args.name, args.metric):
            print(f"{point['Timestamp'].isoformat()}  {point['MetricName']}  {point['Value']:.6g}")
    return 0


def _print_logs(session: Any, name: str, follow: bool) -> None:
    service = session.platform.training_jobs
    cursor = 0
    while True:
        status = service.describe_training_job(name)["TrainingJobStatus"]
        for event in session.platform.logs.job_events(name, cursor):
            print(event["message"])
            cursor = event["id"]
        if not follow or status in ("Completed", "Failed", "Stopped"):
            return
        time.sleep(0.2)


def cmd_tuning(args: argparse.Namespace) -> int:
    from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics
    from forgeml.sdk.session import Session
    from forgeml.sdk.tuner import progress_key, progress_line

    session = Session()
    service = session.platform.tuning_jobs
    if args.tuning_command == "list":
        from forgeml.cli.render import tuning_table

        console.print(tuning_table(service.list_hyper_parameter_tuning_jobs(MaxResults=min(args.max, 100),
                                                                            SortBy="CreationTime",
                                                                            SortOrder="Descending")["HyperParameterTuningJobSummaries"]))
    elif args.tuning_command == "describe":
        print(to_json(service.describe_hyper_parameter_tuning_job(args.name)))
    elif args.tuning_command == "jobs":
        frame = HyperparameterTuningJobAnalytics(args.name, sagemaker_session=session).dataframe()
        if not frame.empty and "FinalObjectiveValue" in frame:
            frame = frame.sort_values("FinalObjectiveValue", ascending=args.ascending, na_position="last")
        console.print(frame.to_string(index=False) if not frame.empty else "(no training jobs yet)")
    elif args.tuning_command == "plot":
        analytics = HyperparameterTuningJobAnalytics(args.name, sagemaker_session=session)
        for kind, suffix in (("objective", "objective"), ("hyperparameters", "hyperparameters")):
            path = analytics.plot(f"{args.output_prefix or args.name}-{suffix}.{args.format}", kind=kind)
            console.print(f"wrote {path}")
    elif args.tuning_command == "stop":
        service.stop_hyper_parameter_tuning_job(args.name)
        console.print(f"Stopping {args.name}")
    elif args.tuning_command == "watch":
        last: tuple[Any, ...] = ()
        while True:
            description = service.describe_hyper_parameter_tuning_job(args.name)
            if progress_key(description) != last:
                console.print(progress_line(description))
                last = progress_key(description)
            if description["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
                return 0
            time.sleep(0.5)
    return 0


def cmd_info(_args: argparse.Namespace) -> int:
    from forgeml.algorithms.registry import available
    from forgeml.config import Config
    from forgeml.service.platform import Platform

    config = Config.from_env()
    platform = Platform.get(config)
    console.print(f"[bold]forgeml[/] home:          {config.home}")
    console.print(f"metadata store:        {config.database_url} (schema v{platform.db.schema_version()})")
    store = config.s3_endpoint_url or f"{config.local_s3_root} (s3:// URIs resolve here)"
    console.print(f"artifact store:        {store}")
    console.print(f"executor:              {config.executor}, {config.max_concurrent_jobs} concurrent job(s)")
    console.print(f"region / account:      {config.region} / {config.account_id}")
    console.print(f"built-in algorithms:   {', '.join(available())}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from forgeml.cli.demo import run_demo

    return run_demo(quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forgeml", description="SageMaker's API on your own machine.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run a training job (built-in algorithm or script mode)")
    train.add_argument("--algorithm", help="built-in algorithm, e.g. linear-learner, xgboost, kmeans")
    train.add_argument("--entry-point", help="script-mode entry point, e.g. train.py")
    train.add_argument("--source-dir", help="folder holding the entry point and its modules")
    train.add_argument("--channel", action="append", metavar="NAME=URI",
                       help="input channel: an s3:// or file:// URI, or a local path to upload")
    train.add_argument("--content-type", action="append", metavar="NAME=TYPE", help="a channel's content type")
    train.add_argument("--hp", action="append", metavar="NAME=VALUE", help="a hyperparameter")
    train.add_argument("--metric", action="append", metavar="NAME=REGEX", help="a metric definition")
    train.add_argument("--instance-type", default="ml.m5.large")
    train.add_argument("--instance-count", type=int, default=1)
    train.add_argument("--input-mode", default="File", choices=["File", "Pipe", "FastFile"])
    train.add_argument("--output-path")
    train.add_argument("--max-run", type=int, default=86400, help="MaxRuntimeInSeconds")
    train.add_argument("--job-name")
    train.add_argument("--no-wait", action="store_true", help="return once the job is created")
    train.set_defaults(func=cmd_train)

    jobs = sub.add_parser("jobs", help="training jobs: list, describe, logs, metrics, stop")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list")
    listing.add_argument("--status", choices=["InProgress", "Completed", "Failed", "Stopping", "Stopped"])
    listing.add_argument("--name-contains")
    listing.add_argument("--max", type=int, default=20)
    for name in ("describe", "stop"):
        jobs_sub.add_parser(name).add_argument("name")
    logs = jobs_sub.add_parser("logs")
    logs.add_argument("name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    metrics = jobs_sub.add_parser("metrics")
    metrics.add_argument("name")
    metrics.add_argument("--metric")
    jobs.set_defaults(func=cmd_jobs)

    tuning = sub.add_parser("tuning", help="hyperparameter tuning jobs: list, describe, jobs, plot, watch, stop")
    tuning_sub = tuning.add_subparsers(dest="tuning_command", required=True)
    tuning_list = tuning_sub.add_parser("list")
    tuning_list.add_argument("--max", type=int, default=20)
    for name in ("describe", "stop", "watch"):
        tuning_sub.add_parser(name).add_argument("name")
    tuning_jobs = tuning_sub.add_parser("jobs", help="the training jobs as a table, best first")
    tuning_jobs.add_argument("name")
    tuning_jobs.add_argument("--ascending", action="store_true", help="sort objective values ascending")
    plot = tuning_sub.add_parser("plot", help="objective-over-time and hyperparameter charts")
    plot.add_argument("name")
    plot.add_argument("--format", choices=["html", "png"], default="html")
    plot.add_argument("--output-prefix")
    tuning.set_defaults(func=cmd_tuning)

    from forgeml.cli.endpoints import add_parsers as add_endpoint_parsers
    from forgeml.cli.keys import add_keys_parser
    from forgeml.cli.server import add_server_parser
    from forgeml.cli.transform import add_transform_parser

    add_endpoint_parsers(sub)
    add_transform_parser(sub)
    add_server_parser(sub)
    add_keys_parser(sub)

    info = sub.add_parser("info", help="where forgeml keeps its state")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="the flagship flow end to end on generated data")
    demo.add_argument("--quick", action="store_true", help="smaller data")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UnexpectedStatusException as exc:
        console.print(f"[red]{exc.message}[/]")
        return 1
    except ForgeMLError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
