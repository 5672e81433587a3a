"""SageMaker's Linear Learner, natively: binary, multiclass and regression linear models.

Modules: ``hyperparameters`` (schema and cross-parameter rules), ``data`` (channels as checked
batches), ``scaler`` (normalisation), ``losses``, ``optimizers``, ``ensemble`` (settings of the
parallel models), ``train`` (the epoch loop, early stopping, selection, final scores),
``metrics`` (metric names, regexes, calibration), ``model`` (artifact), ``serve`` (inference).

Artifact: ``model_algo-1`` in the model directory is a zip archive (SageMaker's is a zip of an
MXNet symbol and params; this one holds the same information as plain files):

* ``manifest.json``: ``format`` (``forgeml-linear-learner``), ``version`` (1), ``predictor_type``,
  ``loss``, ``feature_dim``, ``num_classes`` (multiclass, else null), ``outputs`` (classes for
  multiclass, else 1) and ``params``, the archive paths of the arrays below.
* ``additional-params.json``: ``threshold`` (binary decision threshold on the score: a probability
  for logistic, a margin for hinge loss), ``label_mean``/``label_stdev`` (regression label
  scaling; 0/1 when off) and ``hyperparameters`` (the chosen model's settings, as logged in
  ``Best model found for hyperparameters``).
* ``params/weight.npy`` (feature_dim × outputs), ``params/bias.npy`` (outputs),
  ``params/feature_mean.npy`` and ``params/feature_stdev.npy`` (feature_dim each; 0 and 1 where
  centring or scaling is off): numpy ``.npy`` float32 arrays. The weights act on normalised
  features: ``output = ((x - feature_mean) / feature_stdev) @ weight + bias``, then for regression
  ``prediction = output * label_stdev + label_mean``.
"""

from forgeml.algorithms.linear_learner.algorithm import LinearLearner

ALGORITHM = LinearLearner()

__all__ = ["ALGORITHM", "LinearLearner"]
