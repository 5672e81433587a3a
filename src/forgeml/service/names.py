"""Resource names and ARNs as SageMaker writes them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


def arn(region: str, account: str, resource: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<resource>/<name>`` (names lower-cased, as SageMaker)."""
    return f"arn:aws:sagemaker:{region}:{account}:{resource}/{name.lower()}"


def timestamp() -> str:
    """``2024-06-02-19-05-24-202``: the sagemaker SDK's name suffix (UTC, milliseconds)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}"


def name_from_base(base: str, max_length: int = 63) -> str:
    suffix = timestamp()
    trimmed = base[: max_length - len(suffix) - 1].rstrip("-")
    return f"{trimmed}-{suffix}"


def base_name_from_image(image: str) -> str:
    """The repository part of an image URI (``.../sagemaker-xgboost:1.7-1`` -> ``sagemaker-xgboost``)."""
    match = re.match(r"^(.+/)?([^:/@]+)([:@].*)?$", image)
    return match.group(2) if match else image


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)
