"""Helpers shared by several built-in algorithms.

The algorithms were written in parallel and each grew its own copy of these pieces; they live here
once so that a fix reaches every algorithm. Nothing here knows about a particular algorithm:
``mxnet_ndarray`` (MXNet's NDArray file format), ``binary`` (a bounds-checked byte cursor for binary
artifact formats), ``batches`` (a channel as mini-batches checked against ``feature_dim``),
``adam`` (MXNet's Adam update), ``artifact`` (the ``model_algo-1`` name and zip helpers),
``hyperparameters`` (container-internal keys accepted without effect) and ``linalg`` (row norms).
"""
