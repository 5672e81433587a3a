"""``forgeml transform``: run a batch transform job with a model over S3 objects, from the shell."""

from __future__ import annotations

import argparse
from typing import Any

from forgeml.cli.render import console
from forgeml.errors import UnexpectedStatusException


def add_transform_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transform", help="run a batch transform job: a model over every object under an S3 prefix",
        description="Create a batch transform job, wait for it, and list the .out objects it wrote.")
    parser.add_argument("--model", required=True, help="the model's name (CreateModel / Model.create)")
    parser.add_argument("--input", required=True, metavar="S3URI", help="the input prefix (or manifest file)")
    parser.add_argument("--output", required=True, metavar="S3URI", help="where the .out objects go")
    parser.add_argument("--data-type", default="S3Prefix", choices=["S3Prefix", "ManifestFile"])
    parser.add_argument("--content-type", help="the input's MIME type, e.g. text/csv")
    parser.add_argument("--compression-type", choices=["None", "Gzip"])
    parser.add_argument("--split-type", choices=["None", "Line", "RecordIO", "TFRecord"])
    parser.add_argument("--strategy", choices=["MultiRecord", "SingleRecord"], help="BatchStrategy")
    parser.add_argument("--accept", help="the output's MIME type, e.g. text/csv")
    parser.add_argument("--assemble-with", choices=["None", "Line"])
    parser.add_argument("--input-filter", help="JSONPath selecting what the model gets, e.g. '$[1:]'")
    parser.add_argument("--output-filter", help="JSONPath selecting what is written, e.g. '$[0,-1]'")
    parser.add_argument("--join-source", choices=["None", "Input"])
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--instance-type", default="ml.m5.large")
    parser.add_argument("--max-payload", type=int, help="MaxPayloadInMB")
    parser.add_argument("--max-concurrent", type=int, help="MaxConcurrentTransforms")
    parser.add_argument("--job-name")
    parser.add_argument("--no-wait", action="store_true", help="return once the job is created")
    parser.set_defaults(func=cmd_transform)


def cmd_transform(args: argparse.Namespace) -> int:
    from forgeml.sdk.session import Session
    from forgeml.sdk.transformer import Transformer, wait_for_transform_job

    session = Session()
    transformer = Transformer(
        args.model, args.instance_count, args.instance_type, strategy=args.strategy,
        assemble_with=args.assemble_with, output_path=args.output, accept=args.accept,
        max_concurrent_transforms=args.max_concurrent, max_payload=args.max_payload, sagemaker_session=session,
    )
    transformer.transform(args.input, data_type=args.data_type, content_type=args.content_type,
                          compression_type=args.compression_type, split_type=args.split_type, job_name=args.job_name,
                          input_filter=args.input_filter, output_filter=args.output_filter,
                          join_source=args.join_source, wait=False)
    job = transformer.latest_transform_job
    assert job is not None
    console.print(f"Transform job [bold]{job.name}[/]")
    if args.no_wait:
        return 0
    try:
        description = wait_for_transform_job(session, job.name)
    except UnexpectedStatusException:
        reason = job.describe().get("FailureReason", "(no reason recorded)")
        console.print(f"[red]{job.name}: Failed[/]\n  {reason}")
        return 1
    if description["TransformJobStatus"] != "Completed":
        console.print(f"[yellow]{job.name}: {description['TransformJobStatus']}[/]")
        return 1
    output = description["TransformOutput"]["S3OutputPath"].rstrip("/") + "/"
    written = [o for o in session.platform.artifacts.list_objects(output) if o.uri.endswith(".out")]
    console.print(f"[green]{job.name}: Completed[/], {len(written)} output object(s):")
    for obj in written:
        console.print(f"  {obj.uri}  {obj.size:,} bytes")
    return 0
