"""``#quality_metric`` lines exactly as SageMaker prints them, which its metric regexes rely on.

SageMaker: ``#quality_metric: host=algo-1, train msd <loss>=0.0657`` and, per epoch,
``#quality_metric: host=algo-1, epoch=0, train msd <loss>=...``: a comma follows every
``key=value`` field. ``AlgorithmLogger.quality_metric`` currently omits the comma before the
channel (``host=algo-1 train msd``), which SageMaker's regexes (``host=\\S+, test msd <loss>=``)
do not match; K-Means, PCA and k-NN print through this helper until the shared logger is fixed.
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
    maximize: bool = False,
) -> None:
    fields = [f"host={log.host}"] + ([f"epoch={epoch}"] if epoch is not None else [])
    tag = "<score>" if maximize else "<loss>"
    log.info(f"#quality_metric: {', '.join(fields)}, {channel} {metric} {tag}={float(value)!r}")
