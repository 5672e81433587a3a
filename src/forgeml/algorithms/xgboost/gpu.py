"""Whether a GPU job can run here: the platform's GPU count, else the CUDA driver's device count.

XGBoost >= 2 quietly falls back to the CPU when ``device=cuda`` finds no GPU; SageMaker's 1.x
images instead fail a ``gpu_hist`` job on an instance without one. forgeml fails it too, with a
ClientError that says what to change, rather than train on the CPU behind the user's back.
"""

from __future__ import annotations

import ctypes


def cuda_device_count() -> int:
    """Devices the CUDA driver sees (honours CUDA_VISIBLE_DEVICES); 0 without a driver."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    return 0


def xgboost_has_cuda() -> bool:
    import xgboost

    return bool(xgboost.build_info().get("USE_CUDA"))


def gpu_available(num_gpus: int) -> bool:
    """A GPU XGBoost can use: the job was given one, or the driver sees one, and XGBoost has CUDA."""
    return (num_gpus > 0 or cuda_device_count() > 0) and xgboost_has_cuda()
