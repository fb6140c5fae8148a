"""The names of the input normalisations, importable without JAX.

``lstmlab.core.model`` implements them (and re-exports ``NORMS``); they live here, over
nothing, so that the command line builds its ``--norm`` flags (and answers ``--help``)
without loading the numerical stack.
"""

__all__ = ["NORMS"]

NORMS = ("none", "difference", "window")
"""Input normalisation of each window, ``norm`` of ``LSTMConfig`` and ``MLPConfig``.

* ``"none"``: the raw network, Keras-exact (what ``.keras`` files hold).
* ``"difference"``: the target column minus the window's last target value; the outputs
  get that value added back. The network sees the shape of the window, never its level.
* ``"window"``: instance normalisation (RevIN without its affine part, as NeuralForecast's
  ``revin`` scaler): the target column becomes ``(x - mu) / (sigma + NORM_EPS)`` with the
  window's own mean ``mu`` and standard deviation ``sigma`` (population, ``ddof=0``); the
  outputs become ``y * (sigma + NORM_EPS) + mu`` (``lstmlab.core.model.NORM_EPS``).

The target is input column 0 (the series' own value); the other columns are covariates and
pass unchanged. Every output is taken to be a future value of that target, in its units (a
direct head's outputs are its horizon values): a model whose outputs are other columns, or
several targets, must use ``"none"``.
"""
