"""Batch transform: what a transform job's runner does with input objects, records and model answers.

``records`` cuts objects into records and packs requests, ``jsonpath`` and ``join`` apply
DataProcessing (filters and joins), ``runner`` runs a job end to end.
"""
