"""Logs in CloudWatch Logs' JSON 1.1 protocol (``X-Amz-Target: Logs_20140328.<Operation>``).

The subset that tools tailing SageMaker jobs use: ``DescribeLogStreams``, ``GetLogEvents`` and
``FilterLogEvents``, each one call of ``forgeml.service.logs.LogService`` (groups, tokens, windows,
filter patterns and errors are its to judge).
"""

from __future__ import annotations

from forgeml.server.json_protocol import JsonService, Operation

TARGET_PREFIX = "Logs_20140328"

OPERATIONS: dict[str, Operation] = {
    "DescribeLogStreams": lambda p, r: p.logs.describe_log_streams(r),
    "GetLogEvents": lambda p, r: p.logs.get_log_events(r),
    "FilterLogEvents": lambda p, r: p.logs.filter_log_events(r),
}

SERVICE = JsonService(prefix=TARGET_PREFIX, model_name="logs", operations=OPERATIONS)
