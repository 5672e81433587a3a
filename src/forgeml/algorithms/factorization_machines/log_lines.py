"""``#quality_metric`` lines in exactly the shapes SageMaker's metric regexes expect.

The observed shapes are ``host=algo-1, train m <loss>=v`` (final),
``host=algo-1, epoch=0, train m <loss>=v`` (per epoch) and
``host=algo-1, epoch=0, batch=5 train m <loss>=v`` (per batch: no comma after the batch).
``AlgorithmLogger.quality_metric`` drops the comma before the channel in the first two shapes,
which SageMaker's regexes (``host=\\S+, train ...``, ``epoch=\\S+, train ...``) then miss, so the
lines are composed here and printed through the logger's ``info``.
"""

from __future__ import annotations

from forgeml.algorithms.logging import AlgorithmLogger


def quality_metric(
    log: AlgorithmLogger,
    channel: str,
    metric: str,
    value: float,
    *,
    epoch: int | None = None,
    batch: int | None = None,
    maximize: bool = False,
) -> None:
    where = f"host={log.host}, "
    if epoch is not None:
        where += f"epoch={epoch}, "
    if batch is not None:
        where += f"batch={batch} "
    tag = "<score>" if maximize else "<loss>"
    log.info(f"#quality_metric: {where}{channel} {metric} {tag}={float(value)!r}")
