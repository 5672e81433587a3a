"""SageMaker instance types mapped to the CPU, memory and GPUs a job may use here.

A job asks for an instance type; the local executor gives it ``min(vCPUs, cores)`` threads
(``SM_NUM_CPUS``, ``OMP_NUM_THREADS``) and reports the type back as SageMaker would. Unknown types
are a ValidationException at job creation.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeml.errors import ValidationException


@dataclass(frozen=True)
class InstanceProfile:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0


# family -> {size: (vCPUs, GiB, GPUs)}; sizes share the usual EC2 doubling pattern
_GENERAL = {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128),
            "12xlarge": (48, 192), "16xlarge": (64, 256), "24xlarge": (96, 384)}
_COMPUTE = {"large": (2, 4), "xlarge": (4, 8), "2xlarge": (8, 16), "4xlarge": (16, 32), "9xlarge": (36, 72),
            "12xlarge": (48, 96), "18xlarge": (72, 144), "24xlarge": (96, 192)}
_MEMORY = {"large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128), "8xlarge": (32, 256),
           "12xlarge": (48, 384), "16xlarge": (64, 512), "24xlarge": (96, 768)}


def _table() -> dict[str, InstanceProfile]:
    table: dict[str, InstanceProfile] = {}
    for family, sizes in (("m4", _GENERAL), ("m5", _GENERAL), ("m6i", _GENERAL), ("m7i", _GENERAL),
                          ("c4", _COMPUTE), ("c5", _COMPUTE), ("c6i", _COMPUTE), ("c7i", _COMPUTE),
                          ("r5", _MEMORY), ("r6i", _MEMORY), ("r7i", _MEMORY)):
        for size, (cpus, mem) in sizes.items():
            name = f"ml.{family}.{size}"
            table[name] = InstanceProfile(name, cpus, mem)
    for family in ("t2", "t3"):  # burstable types, common for small endpoints and notebooks
        for size, (cpus, mem) in {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32)}.items():
            table[f"ml.{family}.{size}"] = InstanceProfile(f"ml.{family}.{size}", cpus, mem)
    gpu = {
        "ml.p2.xlarge": (4, 61, 1), "ml.p2.8xlarge": (32, 488, 8), "ml.p2.16xlarge": (64, 732, 16),
        "ml.p3.2xlarge": (8, 61, 1), "ml.p3.8xlarge": (32, 244, 4), "ml.p3.16xlarge": (64, 488, 8),
        "ml.p3dn.24xlarge": (96, 768, 8), "ml.p4d.24xlarge": (96, 1152, 8), "ml.p5.48xlarge": (192, 2048, 8),
        "ml.g4dn.xlarge": (4, 16, 1), "ml.g4dn.2xlarge": (8, 32, 1), "ml.g4dn.4xlarge": (16, 64, 1),
        "ml.g4dn.8xlarge": (32, 128, 1), "ml.g4dn.12xlarge": (48, 192, 4), "ml.g4dn.16xlarge": (64, 256, 1),
        "ml.g5.xlarge": (4, 16, 1), "ml.g5.2xlarge": (8, 32, 1), "ml.g5.4xlarge": (16, 64, 1),
        "ml.g5.8xlarge": (32, 128, 1), "ml.g5.12xlarge": (48, 192, 4), "ml.g5.48xlarge": (192, 768, 8),
        "ml.g6.xlarge": (4, 16, 1), "ml.g6.2xlarge": (8, 32, 1), "ml.g6.12xlarge": (48, 192, 4),
    }
    for name, (cpus, mem, gpus) in gpu.items():
        table[name] = InstanceProfile(name, cpus, mem, gpus)
    # sagemaker local mode's names: the whole machine
    table["local"] = InstanceProfile("local", 0, 0)
    table["local_gpu"] = InstanceProfile("local_gpu", 0, 0, 1)
    return table


INSTANCE_TYPES: dict[str, InstanceProfile] = _table()


def instance_profile(name: str, field: str = "resourceConfig.instanceType") -> InstanceProfile:
    profile = INSTANCE_TYPES.get(name)
    if profile is None:
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: "
            f"Member must be a known instance type (for example ml.m5.xlarge, ml.c5.2xlarge, ml.g4dn.xlarge; "
            f"'local' uses the whole machine)"
        )
    return profile
