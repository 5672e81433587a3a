"""Container-internal hyperparameters that the MXNet-based algorithms accept without effect.

Why it exists: the default configuration SageMaker's MXNet containers print (and that jobs copied
from SageMaker often send back) holds underscore keys that steer MXNet's distributed key-value
store, GPU count, profiler and log verbosity. A single-process numpy implementation has none of
those, so K-Means, PCA, Linear Learner, Factorization Machines, Random Cut Forest and IP Insights
accept them (a job that sets them keeps working) and ignore them. Each algorithm declared its own
copy; the common four and their defaults live here, with the per-container differences as
arguments. k-NN and XGBoost do not accept them.
"""

from __future__ import annotations

from collections.abc import Mapping

from forgeml.algorithms.hyperparameters import Hyperparameter, Str


def mxnet_internal_keys(
    *, kvstore: str = "auto", num_kv_servers: str = "auto", extra: Mapping[str, str] | None = None
) -> list[Hyperparameter]:
    """``_kvstore``, ``_num_gpus``, ``_num_kv_servers``, ``_log_level`` (+ ``extra``), as strings.

    The defaults are the values each container's default configuration shows; they are only
    echoed in the job's configuration log lines.
    """
    defaults = {
        "_kvstore": kvstore,
        "_num_gpus": "auto",
        "_num_kv_servers": num_kv_servers,
        "_log_level": "info",
        **(extra or {}),
    }
    return [Str(name, default) for name, default in defaults.items()]
