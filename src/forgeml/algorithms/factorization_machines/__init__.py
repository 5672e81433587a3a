"""Factorization Machines (SageMaker's ``factorization-machines`` built-in algorithm)."""

from forgeml.algorithms.factorization_machines.algorithm import FactorizationMachines

ALGORITHM = FactorizationMachines()

__all__ = ["ALGORITHM", "FactorizationMachines"]
