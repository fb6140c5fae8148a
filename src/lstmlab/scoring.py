"""Scores and verdicts of a comparison: point metrics, flags, the seed ensemble, intervals, tests.

Pure NumPy (and ``scipy.stats`` for the Mann-Whitney test over seeds); no model is trained
here. It sits beside ``checks`` below every layer that forecasts: ``Forecaster`` checks its
seeds and calibrates its intervals with it, ``compare`` scores and judges with it. The shapes
follow ``compare``:

* forecasts: ``(seeds, origins, horizon, series)`` in the original units (one seed for a
  baseline);
* actual: ``(origins, horizon, series)``; a NaN is a missing observation, left out of every
  metric and counted;
* train: ``(time, series)``, the training part of the series (NaN where missing).

The pieces, in the order a report uses them:

1. ``mase_scale`` and ``point_metrics``: RMSE, MAE, MASE and MAPE per seed, overall and per
   step ahead.
2. ``plausible_range`` and ``flag_forecasts``: a seed whose forecast holds a non-finite value,
   or a value a few training ranges away from anything seen, is flagged with a sentence;
   ``seed_ensemble`` is the median over the seeds that were not flagged.
3. ``conformal_halfwidths``, ``conformal_intervals``, ``interval_coverage``,
   ``interval_coverage_per_step`` and ``mean_interval_width``: split-conformal prediction
   intervals and their coverage on the test part.
4. ``compare_seeds``: the two-sided Mann-Whitney U test over the per-seed scores of two models.
5. ``summary`` and ``verdict``: mean, standard deviation, median and worst sample per model,
   and the "best model" sentence that says when models tie within the noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from lstmlab.checks import check_fraction, check_positive_int, check_positive_number

__all__ = [
    "MIN_TEST_SAMPLES",
    "DieboldMariano",
    "ScoreSummary",
    "SeedFlags",
    "SeedTest",
    "Verdict",
    "compare_seeds",
    "conformal_halfwidths",
    "conformal_intervals",
    "diebold_mariano",
    "lowest",
    "flag_forecasts",
    "format_p",
    "interval_coverage",
    "interval_coverage_per_step",
    "mase_scale",
    "mean_interval_width",
    "origin_losses",
    "plausible_range",
    "point_metrics",
    "seed_ensemble",
    "summary",
    "verdict",
]

MIN_TEST_SAMPLES = 3
"""The fewest samples per side for which ``SeedTest.sentence`` lets the test decide.

With two seeds per side the smallest two-sided Mann-Whitney p-value is 1/3: no result could be
significant, so the sentence says the test cannot decide instead of "no difference".
"""


# --------------------------------------------------------------------------- validation


def _as_array(name: str, array: Any, ndim: int, shape_text: str) -> np.ndarray:
    """``array`` as float64 with ``ndim`` dimensions; NaN and infinity are allowed."""
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}; pass a numeric array")
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must have shape {shape_text}, got shape {array.shape}; "
            f"reshape it to {shape_text}"
        )
    return array.astype(np.float64, copy=False)


def _check_actual(actual: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``actual`` as float64 ``(origins, horizon, series)`` matching ``shape``; no infinity."""
    actual = _as_array("actual", actual, 3, "(origins, horizon, series)")
    if actual.shape != shape:
        raise ValueError(
            f"actual must have shape (origins, horizon, series) = {shape} to match the "
            f"forecasts, got {actual.shape}; pass the observed values of the same origins"
        )
    if np.any(np.isinf(actual)):
        raise ValueError(
            f"actual holds {int(np.count_nonzero(np.isinf(actual)))} infinite value(s); an "
            "observation must be finite, or NaN where it is missing"
        )
    return actual


def _check_series_vector(name: str, vector: Any, series: int) -> np.ndarray:
    vector = _as_array(name, vector, 1, "(series,)")
    if vector.shape[0] != series:
        raise ValueError(
            f"{name} must have shape (series,) = ({series},), got {vector.shape}; pass one "
            "value per series"
        )
    return vector


# --------------------------------------------------------------------------- point metrics


def mase_scale(train: Any, season: int | None = None) -> np.ndarray:
    """The MASE scale per series: the in-sample MAE of the (seasonal) naive one-step forecast.

    The scale is ``mean(|train[t] - train[t - m]|)`` over the training part, with ``m`` the
    season (the seasonal naive forecast) or 1 (the naive forecast, for ``season`` None or 1)
    (Hyndman and Koehler, 2006). Differences that involve a NaN are left out.

    A series whose scale is 0 (its training part repeats itself exactly: a constant, or a
    pure season of length ``m``) or NaN (fewer than ``m + 1`` observed values) has no MASE:
    ``point_metrics`` then returns NaN for ``"mase"``, never an infinite or huge value.

    Args:
        train: ``(time, series)`` the training part, in original units.
        season: the season length ``m``, or None for the naive forecast.

    Returns:
        ``(series,)`` the scale of each series (0 or NaN where undefined, see above).

    Raises:
        ValueError: ``train`` is not 2-D, or ``season`` is not a positive int.

    Example:
        >>> mase_scale(np.array([[1.0], [3.0], [2.0], [6.0]])).tolist()
        [2.3333333333333335]
        >>> mase_scale(np.array([[1.0], [3.0], [2.0], [6.0]]), season=2).tolist()
        [2.0]
    """
    train = _as_array("train", train, 2, "(time, series)")
    lag = 1 if season is None else check_positive_int("season", season)
    if train.shape[0] <= lag:
        return np.full(train.shape[1], np.nan)
    differences = np.abs(train[lag:] - train[:-lag])  # (time - lag, series)
    observed = ~np.isnan(differences)
    count = observed.sum(axis=0)  # (series,)
    total = np.where(observed, differences, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _masked_mean(values: np.ndarray, valid: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Mean of ``values`` where ``valid`` along ``axis``; NaN where nothing is valid."""
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def point_metrics(forecasts: Any, actual: Any, scale: Any) -> dict[str, np.ndarray]:
    """RMSE, MAE, MASE and MAPE of every seed, overall and per step ahead.

    Every metric is a mean over the observed points (``actual`` not NaN); the missing ones
    are left out and counted in ``"n_missing"``. MAPE is in percent over the observed points
    whose actual value is non-zero (NaN if there is none). MASE is the mean of
    ``|error| / scale[series]`` over the observed points (the scaled errors of Hyndman and
    Koehler, 2006); it is NaN when some series' scale is 0 or NaN (see ``mase_scale``), since
    leaving that series out would change what is averaged. A non-finite forecast makes the
    seed's metrics non-finite: ``flag_forecasts`` says which seeds to distrust.

    Args:
        forecasts: ``(seeds, origins, horizon, series)`` in original units.
        actual: ``(origins, horizon, series)`` observed values; NaN where missing.
        scale: ``(series,)`` the MASE scale, from ``mase_scale`` on the training part.

    Returns:
        ``"rmse"``, ``"mae"``, ``"mase"``, ``"mape"`` each ``(seeds,)``; ``"rmse_per_step"``,
        ``"mae_per_step"``, ``"mase_per_step"``, ``"mape_per_step"`` each ``(seeds, horizon)``;
        ``"n_missing"`` a 0-d int array: the actual values left out.

    Raises:
        ValueError: a shape does not match, or ``actual`` holds an infinite value.

    Example:
        >>> m = point_metrics(
        ...     np.array([[[[1.0]], [[3.0]], [[5.0]]]]),
        ...     np.array([[[2.0]], [[2.0]], [[np.nan]]]),
        ...     scale=np.array([0.5]),
        ... )
        >>> [float(m[k][0]) for k in ("rmse", "mae", "mase", "mape")], int(m["n_missing"])
        ([1.0, 1.0, 2.0, 50.0], 1)
    """
    forecasts = _as_array("forecasts", forecasts, 4, "(seeds, origins, horizon, series)")
    actual = _check_actual(actual, forecasts.shape[1:])
    scale = _check_series_vector("scale", scale, forecasts.shape[3])
    observed = np.broadcast_to(~np.isnan(actual)[None], forecasts.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        errors = forecasts - actual[None]  # (seeds, origins, horizon, series)
        absolute = np.abs(errors)
        squared = errors**2
        nonzero = observed & (actual[None] != 0)
        percent = 100.0 * absolute / np.where(actual[None] != 0, np.abs(actual[None]), 1.0)
        scale_ok = bool(np.all(np.isfinite(scale) & (scale > 0)))
        scaled = absolute / np.where(scale_ok, scale, 1.0)  # scale broadcasts over series
    overall, per_step = (1, 2, 3), (1, 3)
    metrics: dict[str, np.ndarray] = {}
    for axis, suffix in ((overall, ""), (per_step, "_per_step")):
        mse = _masked_mean(squared, observed, axis)
        metrics["rmse" + suffix] = np.sqrt(mse)
        metrics["mae" + suffix] = _masked_mean(absolute, observed, axis)
        mase = _masked_mean(scaled, observed, axis)
        metrics["mase" + suffix] = mase if scale_ok else np.full_like(mase, np.nan)
        metrics["mape" + suffix] = _masked_mean(percent, nonzero, axis)
    metrics["n_missing"] = np.asarray(int(np.count_nonzero(np.isnan(actual))))
    return metrics


# --------------------------------------------------------------------------- flags and ensemble


def plausible_range(train: Any, factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """The range per series beyond which a forecast is not believed.

    ``[min - factor * range, max + factor * range]`` of the training part, with
    ``range = max - min`` (NaN ignored). A level a few training ranges away from anything the
    model was trained on is not a forecast but a divergence (a recursive forecast feeding
    its own errors back, a stateful model driven off its training distribution): it is
    flagged, not averaged. The default 3 leaves room for a trend that keeps going through the
    test part (a test part half as long as the training part, trending at the training
    part's pace, reaches about half a range beyond it). A constant training part has range
    0; its width is then ``max(|level|, 1)`` so that a small move is not flagged.

    Args:
        train: ``(time, series)`` the training part, in original units.
        factor: how many training ranges beyond the training extremes are still plausible.

    Returns:
        ``(low, high)``, each ``(series,)``.

    Raises:
        ValueError: ``train`` is not 2-D, a series has no observed value, or ``factor`` is not
            a positive number.

    Example:
        >>> low, high = plausible_range(np.array([[0.0], [1.0], [0.5]]), factor=2.0)
        >>> low.tolist(), high.tolist()
        ([-2.0], [3.0])
    """
    train = _as_array("train", train, 2, "(time, series)")
    factor = check_positive_number("factor", factor, fix="pass e.g. 3.0")
    observed = ~np.isnan(train)
    empty = np.flatnonzero(~observed.any(axis=0))
    if train.shape[0] == 0 or empty.size:
        raise ValueError(
            f"train has no observed value in series {empty.tolist() or 'all'} (shape "
            f"{train.shape}); pass a training part with at least one observation per series"
        )
    low = np.where(observed, train, np.inf).min(axis=0)  # (series,)
    high = np.where(observed, train, -np.inf).max(axis=0)
    width = high - low
    width = np.where(width > 0, width, np.maximum(np.abs(high), 1.0))
    return low - factor * width, high + factor * width


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SeedFlags:
    """Which seeds' forecasts are not to be believed, and why.

    Attributes:
        flagged: ``(seeds,)`` bool: the seed holds a non-finite or implausible value.
        non_finite: ``(seeds,)`` int: NaN or infinite forecast values of each seed.
        out_of_range: ``(seeds,)`` int: finite values outside ``[low, high]`` of their series.
        reasons: one sentence per flagged seed, in seed order, e.g. ``"seed 3: 12 non-finite
            values, 40 beyond the plausible range [-1.2, 3.4]"`` (seeds count from 0 along the
            seeds axis).
    """

    flagged: np.ndarray
    non_finite: np.ndarray
    out_of_range: np.ndarray
    reasons: tuple[str, ...]

    @property
    def note(self) -> str:
        """One line for the report: "" when no seed is flagged."""
        count, seeds = int(np.count_nonzero(self.flagged)), self.flagged.size
        if count == 0:
            return ""
        if count == seeds:
            head = (
                f"all {seeds} seed(s) flagged, so the seed ensemble is empty (NaN) and the "
                "model's forecasts are not to be believed"
            )
        else:
            head = f"{count} of {seeds} seeds flagged and left out of the seed ensemble"
        return f"{head}: " + "; ".join(self.reasons)


def _format_number(value: float) -> str:
    """A short human form: 4 significant digits, no exponent between 1e-3 and 1e15."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e15):
        return f"{value:.3e}"
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"


def flag_forecasts(forecasts: Any, low: Any, high: Any) -> SeedFlags:
    """Flag the seeds whose forecasts hold a non-finite value or one outside ``[low, high]``.

    Args:
        forecasts: ``(seeds, origins, horizon, series)`` in original units.
        low: ``(series,)`` the lowest plausible value (``plausible_range``).
        high: ``(series,)`` the highest plausible value.

    Returns:
        The flags, counts and one sentence per flagged seed.

    Raises:
        ValueError: a shape does not match.

    Example:
        >>> forecasts = np.array([1.0, np.nan, 1e21]).reshape(3, 1, 1, 1)
        >>> flags = flag_forecasts(forecasts, np.array([-1.0]), np.array([2.0]))
        >>> flags.flagged.tolist(), flags.reasons
        ([False, True, True], ('seed 1: 1 non-finite value', 'seed 2: 1 beyond the plausible range [-1, 2]'))
    """  # noqa: E501
    forecasts = _as_array("forecasts", forecasts, 4, "(seeds, origins, horizon, series)")
    series = forecasts.shape[3]
    low = _check_series_vector("low", low, series)
    high = _check_series_vector("high", high, series)
    finite = np.isfinite(forecasts)
    non_finite = (~finite).sum(axis=(1, 2, 3))  # (seeds,)
    outside = finite & ((forecasts < low) | (forecasts > high))  # low/high broadcast on series
    out_of_range = outside.sum(axis=(1, 2, 3))
    flagged = (non_finite > 0) | (out_of_range > 0)
    if series == 1:
        where = f"the plausible range [{_format_number(low[0])}, {_format_number(high[0])}]"
    else:
        where = "the plausible range of their series"
    reasons = []
    for seed in np.flatnonzero(flagged):
        parts = []
        if non_finite[seed]:
            plural = "" if non_finite[seed] == 1 else "s"
            parts.append(f"{non_finite[seed]} non-finite value{plural}")
        if out_of_range[seed]:
            parts.append(f"{out_of_range[seed]} beyond {where}")
        reasons.append(f"seed {seed}: " + ", ".join(parts))
    return SeedFlags(
        flagged=flagged,
        non_finite=non_finite,
        out_of_range=out_of_range,
        reasons=tuple(reasons),
    )


def seed_ensemble(forecasts: Any, flagged: Any) -> np.ndarray:
    """The median over the seeds that were not flagged: a model of its own.

    A flagged seed is never included. When every seed is flagged the ensemble is all NaN;
    the caller reports it (``SeedFlags.note`` says so).

    Args:
        forecasts: ``(seeds, origins, horizon, series)``.
        flagged: ``(seeds,)`` bool, from ``flag_forecasts``.

    Returns:
        ``(1, origins, horizon, series)`` the median forecast.

    Raises:
        ValueError: a shape does not match.

    Example:
        >>> forecasts = np.array([1.0, 2.0, 1e21, 4.0]).reshape(4, 1, 1, 1)
        >>> seed_ensemble(forecasts, np.array([False, False, True, False])).ravel().tolist()
        [2.0]
    """
    forecasts = _as_array("forecasts", forecasts, 4, "(seeds, origins, horizon, series)")
    flagged = np.asarray(flagged)
    if flagged.shape != forecasts.shape[:1] or flagged.dtype != np.bool_:
        raise ValueError(
            f"flagged must be a bool array of shape (seeds,) = ({forecasts.shape[0]},), got "
            f"dtype {flagged.dtype} shape {flagged.shape}; pass flag_forecasts(...).flagged"
        )
    kept = forecasts[~flagged]  # (kept seeds, origins, horizon, series)
    if kept.shape[0] == 0:
        return np.full((1, *forecasts.shape[1:]), np.nan)
    return np.median(kept, axis=0)[None]


# --------------------------------------------------------------------------- intervals


def conformal_halfwidths(residuals: Any, level: float) -> np.ndarray:
    """Split-conformal half-widths per step ahead and series.

    With ``n`` calibration residuals of a cell (NaN ones left out), the half-width is the
    ``k``-th smallest ``|residual|`` with ``k = ceil((n + 1) * level)``: the
    ``ceil((n + 1) * level) / n`` empirical quantile. If the calibration residuals and the
    test error are exchangeable, ``forecast ± half-width`` covers the actual value with
    probability at least ``level`` (and below ``level + 1 / (n + 1)`` without ties). When
    ``k > n`` (``n < level / (1 - level)`` roughly: 4 residuals for 0.8, 19 for 0.95, 99 for
    0.99) no finite half-width guarantees the level, and the half-width is ``inf``: an honest
    "too few residuals", never a silently narrow interval.

    Args:
        residuals: ``(n, horizon, series)`` ``actual - forecast`` on a calibration set (the
            validation tail of the training part, or a backtest); NaN where missing.
        level: the nominal coverage, strictly between 0 and 1 (e.g. 0.8 or 0.95).

    Returns:
        ``(horizon, series)`` half-widths (``inf`` where there are too few residuals).

    Raises:
        ValueError: ``residuals`` is not 3-D or holds an infinite value, or ``level`` is not
            in (0, 1).

    Example:
        >>> residuals = np.arange(1.0, 10.0).reshape(9, 1, 1)  # |r| = 1, ..., 9
        >>> conformal_halfwidths(residuals, 0.8).ravel().tolist()  # k = ceil(10 * 0.8) = 8
        [8.0]
        >>> conformal_halfwidths(residuals, 0.95).ravel().tolist()  # k = 10 > 9
        [inf]
    """
    residuals = _as_array("residuals", residuals, 3, "(n, horizon, series)")
    level = check_fraction("level", level, fix="pass e.g. 0.8 or 0.95")
    if np.any(np.isinf(residuals)):
        raise ValueError(
            "residuals hold an infinite value; pass finite residuals (NaN where missing), "
            "from forecasts that flag_forecasts did not flag"
        )
    if residuals.shape[0] == 0:
        return np.full(residuals.shape[1:], np.inf)
    absolute = np.sort(np.abs(residuals), axis=0)  # NaN sort last: (n, horizon, series)
    count = (~np.isnan(residuals)).sum(axis=0)  # (horizon, series)
    # k = ceil((n + 1) * level); the tolerance keeps a product such as 10 * 0.7 =
    # 7.000000000000001 at 7 instead of rounding it up to 8.
    rank = np.ceil((count + 1) * level - 1e-9).astype(int)
    enough = (rank <= count) & (count > 0)
    index = np.clip(rank - 1, 0, residuals.shape[0] - 1)[None]  # (1, horizon, series)
    chosen = np.take_along_axis(absolute, index, axis=0)[0]
    return np.where(enough, chosen, np.inf)


def conformal_intervals(forecast: Any, halfwidths: Any) -> tuple[np.ndarray, np.ndarray]:
    """``forecast ∓ halfwidths``: the interval bounds of every origin.

    Args:
        forecast: ``(origins, horizon, series)`` point forecasts (e.g. the seed ensemble's
            ``[0]``).
        halfwidths: ``(horizon, series)`` from ``conformal_halfwidths``.

    Returns:
        ``(lower, upper)``, each ``(origins, horizon, series)``.

    Raises:
        ValueError: a shape does not match.
    """
    forecast = _as_array("forecast", forecast, 3, "(origins, horizon, series)")
    halfwidths = _as_array("halfwidths", halfwidths, 2, "(horizon, series)")
    if halfwidths.shape != forecast.shape[1:]:
        raise ValueError(
            f"halfwidths must have shape (horizon, series) = {forecast.shape[1:]}, got "
            f"{halfwidths.shape}; pass conformal_halfwidths of residuals of the same horizon"
        )
    return forecast - halfwidths[None], forecast + halfwidths[None]


def _interval_hits(lower: Any, upper: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(inside, observed)`` each ``(origins, horizon, series)``."""
    lower = _as_array("lower", lower, 3, "(origins, horizon, series)")
    upper = _as_array("upper", upper, 3, "(origins, horizon, series)")
    if upper.shape != lower.shape:
        raise ValueError(
            f"upper must have lower's shape {lower.shape}, got {upper.shape}; pass both bounds "
            "of the same forecasts"
        )
    actual = _check_actual(actual, lower.shape)
    observed = ~np.isnan(actual)
    with np.errstate(invalid="ignore"):
        inside = observed & (lower <= actual) & (actual <= upper)
    return inside, observed


def interval_coverage(lower: Any, upper: Any, actual: Any) -> float:
    """The fraction of observed actual values inside ``[lower, upper]``.

    Args:
        lower: ``(origins, horizon, series)`` lower bounds.
        upper: ``(origins, horizon, series)`` upper bounds.
        actual: ``(origins, horizon, series)`` observed values; NaN ones are left out.

    Returns:
        The coverage in [0, 1] (NaN when nothing was observed).

    Raises:
        ValueError: a shape does not match, or ``actual`` holds an infinite value.

    Example:
        >>> actual = np.array([0.0, 1.0, 5.0, np.nan]).reshape(4, 1, 1)
        >>> interval_coverage(actual * 0 - 1, actual * 0 + 2, actual)
        0.6666666666666666
    """
    inside, observed = _interval_hits(lower, upper, actual)
    count = int(observed.sum())
    return float(inside.sum() / count) if count else math.nan


def interval_coverage_per_step(lower: Any, upper: Any, actual: Any) -> np.ndarray:
    """The coverage of each step ahead, as ``interval_coverage`` over origins and series.

    Args:
        lower: ``(origins, horizon, series)`` lower bounds.
        upper: ``(origins, horizon, series)`` upper bounds.
        actual: ``(origins, horizon, series)`` observed values; NaN ones are left out.

    Returns:
        ``(horizon,)`` coverage per step ahead (NaN where nothing was observed).

    Raises:
        ValueError: a shape does not match, or ``actual`` holds an infinite value.
    """
    inside, observed = _interval_hits(lower, upper, actual)
    return _masked_mean(inside.astype(np.float64), observed, (0, 2))


def mean_interval_width(lower: Any, upper: Any, actual: Any) -> float:
    """The mean ``upper - lower`` over the points where ``actual`` was observed.

    Measured on the same points as ``interval_coverage``, so that a coverage and a width
    are comparable between models.

    Args:
        lower: ``(origins, horizon, series)`` lower bounds.
        upper: ``(origins, horizon, series)`` upper bounds.
        actual: ``(origins, horizon, series)`` observed values; NaN ones are left out.

    Returns:
        The mean width (``inf`` if some half-width is ``inf``; NaN when nothing was
        observed).

    Raises:
        ValueError: a shape does not match, or ``actual`` holds an infinite value.
    """
    _, observed = _interval_hits(lower, upper, actual)
    with np.errstate(invalid="ignore"):
        width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    return float(_masked_mean(width, observed, (0, 1, 2)))


# --------------------------------------------------------------------------- tests over seeds


def _as_samples(name: str, values: Any) -> np.ndarray:
    """``values`` as a float64 ``(samples,)`` array (a scalar is one sample)."""
    values = np.atleast_1d(np.asarray(values))
    return _as_array(name, values, 1, "(samples,)")


@dataclass(frozen=True, kw_only=True, slots=True)
class SeedTest:
    """The two-sided Mann-Whitney U test over the per-seed scores of two models.

    Attributes:
        statistic: the U statistic of ``a`` (``scipy.stats.mannwhitneyu``'s): ``n_a * n_b``
            when every score of ``a`` is above every score of ``b``, 0 when below.
        p_value: the two-sided p-value (NaN when a side has no score).
        median_a: the median score of ``a``.
        median_b: the median score of ``b``.
        n_a: the scores of ``a`` tested (NaN scores are left out).
        n_b: the scores of ``b`` tested.
    """

    statistic: float
    p_value: float
    median_a: float
    median_b: float
    n_a: int
    n_b: int

    def sentence(
        self,
        name_a: str,
        name_b: str,
        metric: str = "RMSE",
        alpha: float = 0.05,
        *,
        lower_is_better: bool = True,
    ) -> str:
        """Say plainly whether ``a`` beat ``b`` significantly, ``b`` beat ``a``, or neither.

        Args:
            name_a: the first model's name.
            name_b: the second model's name.
            metric: the score's name, as the report shows it.
            alpha: the significance level.
            lower_is_better: whether a lower score is better (RMSE) or worse (coverage).

        Returns:
            One sentence, e.g. ``"no significant difference in RMSE between stateful and
            stateless over 5 seeds (p = 0.42)"``.

        Raises:
            ValueError: ``alpha`` is not in (0, 1).
        """
        alpha = check_fraction("alpha", alpha, fix="pass e.g. 0.05")
        seeds = f"{self.n_a} seeds" if self.n_a == self.n_b else f"{self.n_a} and {self.n_b} seeds"
        medians = (
            f"median {metric} {_format_number(self.median_a)} against "
            f"{_format_number(self.median_b)}"
        )
        if min(self.n_a, self.n_b) < MIN_TEST_SAMPLES:
            return (
                f"the test over seeds cannot decide between {name_a} and {name_b} with "
                f"{seeds} (it needs at least {MIN_TEST_SAMPLES} per model; {medians})"
            )
        p_text = f"p = {self.p_value:.2g}"
        if not self.p_value < alpha:
            return (
                f"no significant difference in {metric} between {name_a} and {name_b} over "
                f"{seeds} ({p_text}; {medians})"
            )
        # U of a above n_a * n_b / 2: a's scores tend to be the larger ones.
        a_larger = self.statistic > self.n_a * self.n_b / 2
        winner, loser = (name_b, name_a) if a_larger == lower_is_better else (name_a, name_b)
        return (
            f"{winner} beat {loser} significantly on {metric} over {seeds} "
            f"(Mann-Whitney {p_text}; {medians})"
        )


def compare_seeds(a: Any, b: Any) -> SeedTest:
    """The two-sided Mann-Whitney U test of the per-seed scores of two models.

    NaN scores are left out (``n_a``, ``n_b`` count those tested); an infinite score is kept
    (it ranks as the largest). The exact distribution is used for small samples without ties
    (``scipy.stats.mannwhitneyu``'s ``method="auto"``).

    Args:
        a: ``(seeds,)`` scores of the first model (e.g. ``point_metrics(...)["rmse"]``).
        b: ``(seeds,)`` scores of the second model.

    Returns:
        The test (``p_value`` NaN when a side has no score).

    Raises:
        ValueError: ``a`` or ``b`` is not 1-D.

    Example:
        >>> test = compare_seeds([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0])
        >>> round(test.p_value, 4), test.sentence("stateful", "stateless")
        (0.0079, 'stateful beat stateless significantly on RMSE over 5 seeds (Mann-Whitney p = 0.0079; median RMSE 3 against 8)')
    """  # noqa: E501
    a = _as_samples("a", a)
    b = _as_samples("b", b)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    median_a = float(np.median(a)) if a.size else math.nan
    median_b = float(np.median(b)) if b.size else math.nan
    if a.size == 0 or b.size == 0:
        statistic, p_value = math.nan, math.nan
    else:
        # imported here: scipy.stats costs ~58 MB and ~0.5 s, and the service imports this
        # module (forecast metrics) without ever testing seeds
        from scipy import stats

        result = stats.mannwhitneyu(a, b, alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return SeedTest(
        statistic=statistic,
        p_value=p_value,
        median_a=median_a,
        median_b=median_b,
        n_a=int(a.size),
        n_b=int(b.size),
    )


# --------------------------------------------------------------------------- verdicts


def _sample_std(values: np.ndarray) -> float:
    """The sample standard deviation (``ddof=1``); 0 for one value, NaN for none."""
    if values.size == 0:
        return math.nan
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


class ScoreSummary(NamedTuple):
    """A model's scores over its samples (seeds or folds).

    Attributes:
        mean: the mean over the finite samples.
        std: their sample standard deviation (``ddof=1``; 0 for one sample).
        median: their median.
        worst: the worst sample (the largest when lower is better); ``±inf`` when some sample
            is not finite, since a diverged seed is the worst outcome.
    """

    mean: float
    std: float
    median: float
    worst: float


def summary(scores: Mapping[str, Any], *, lower_is_better: bool = True) -> dict[str, ScoreSummary]:
    """Mean, standard deviation, median and worst sample of every model.

    Args:
        scores: per model, its ``(samples,)`` scores (a baseline has one sample).
        lower_is_better: whether a lower score is better (decides ``worst``).

    Returns:
        ``{name: ScoreSummary(mean, std, median, worst)}`` in ``scores``' order; a model with
        no finite sample has NaN mean, std and median.

    Raises:
        ValueError: a model's scores are not 1-D, or have no sample.

    Example:
        >>> summary({"mlp": [3.0, 1.0, 2.0, 6.0]})["mlp"]
        ScoreSummary(mean=3.0, std=2.160246899469287, median=2.5, worst=6.0)
    """
    summaries = {}
    for name, values in scores.items():
        values = _as_samples(f"scores[{name!r}]", values)
        if values.size == 0:
            raise ValueError(f"scores[{name!r}] has no sample; pass at least one score per model")
        finite = values[np.isfinite(values)]
        if finite.size < values.size:
            worst = math.inf if lower_is_better else -math.inf
        else:
            worst = float(finite.max() if lower_is_better else finite.min())
        summaries[name] = ScoreSummary(
            mean=float(finite.mean()) if finite.size else math.nan,
            std=_sample_std(finite),
            median=float(np.median(finite)) if finite.size else math.nan,
            worst=worst,
        )
    return summaries


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Verdict:
    """Which model is best, and which tie with it within the noise.

    Attributes:
        best: the model with the best mean score.
        ties: the other models within the noise of the best (see ``verdict``), best first.
        ranking: every model with a finite score, best mean first.
        summaries: ``summary(scores)`` of every model.
        sentence: the verdict in words, for the report.
    """

    best: str
    ties: tuple[str, ...]
    ranking: tuple[str, ...]
    summaries: dict[str, ScoreSummary]
    sentence: str


def _mean_and_spread(score: ScoreSummary) -> str:
    """``"17.4 ± 0.9"``: the mean to the decimal of the standard deviation's first digit."""
    if score.std == 0 or not math.isfinite(score.std) or abs(score.mean) >= 1e15:
        mean = _format_number(score.mean)
        return mean if score.std == 0 else f"{mean} ± {_format_number(score.std)}"
    decimals = min(max(0, -math.floor(math.log10(score.std))), 12)
    return f"{score.mean:.{decimals}f} ± {score.std:.{decimals}f}"


def _with_spread(name: str, score: ScoreSummary) -> str:
    return f"{name} ({_mean_and_spread(score)})"


def format_p(p: float) -> str:
    """A p-value in two significant digits (``"0.031"``), ``"< 0.001"`` below that."""
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class DieboldMariano(NamedTuple):
    """A Diebold-Mariano test of two forecasts' losses over the same origins.

    Attributes:
        statistic: the statistic with Harvey, Leybourne and Newbold's small-sample correction;
            negative when the first forecast's losses are lower.
        p_value: two-sided, from Student's t with ``origins - 1`` degrees of freedom (NaN
            with fewer than 3 origins).
        origins: the origins where both losses are finite.
    """

    statistic: float
    p_value: float
    origins: int


SIGNIFICANCE = 0.05


def diebold_mariano(loss_a: Any, loss_b: Any, horizon: int = 1) -> DieboldMariano:
    """Whether two forecasts' losses differ across origins (Diebold and Mariano, 1995).

    ``d = loss_a - loss_b`` per origin; the variance of its mean counts the autocovariances
    up to lag ``horizon - 1`` (forecasts of ``horizon`` steps from consecutive origins
    overlap); the statistic is multiplied by ``sqrt((n + 1 - 2h + h (h - 1) / n) / n)`` and
    read against Student's t with ``n - 1`` degrees of freedom (Harvey, Leybourne and
    Newbold, 1997). With ``horizon=1`` this is the one-sample t-test of ``d``.

    Args:
        loss_a: ``(origins,)`` losses of the first forecast (e.g. squared errors).
        loss_b: ``(origins,)`` losses of the second, at the same origins.
        horizon: steps ahead of each forecast.

    Returns:
        The test; an origin where either loss is not finite is left out.

    Raises:
        ValueError: the losses are not 1-D of one length, or a bad horizon.
    """
    a, b = np.asarray(loss_a, np.float64), np.asarray(loss_b, np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"losses must be 1-D and of one length (one per origin), got shapes {a.shape} and "
            f"{b.shape}; pass one loss per origin for each forecast"
        )
    horizon = check_positive_int("horizon", horizon)
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = len(d)
    if n < 3:
        return DieboldMariano(math.nan, math.nan, n)
    centred = d - d.mean()
    gammas = [float(centred[k:] @ centred[: n - k]) / n for k in range(min(horizon, n))]
    variance = (gammas[0] + 2.0 * sum(gammas[1:])) / n
    if not variance > 0.0:  # equal losses at every origin, or a degenerate estimate
        same = float(d.mean()) == 0.0
        return DieboldMariano(0.0 if same else math.copysign(math.inf, d.mean()), float(same), n)
    correction = math.sqrt(max(n + 1 - 2 * horizon + horizon * (horizon - 1) / n, 0.0) / n)
    statistic = float(d.mean()) / math.sqrt(variance) * correction
    from scipy import stats  # imported here: the service imports this module

    return DieboldMariano(statistic, float(2.0 * stats.t.sf(abs(statistic), df=n - 1)), n)


def origin_losses(forecast: Any, actual: Any) -> np.ndarray:
    """``(origins,)`` squared errors of one forecast, averaged over its steps and series.

    What ``diebold_mariano`` compares for two forecasts of the same origins; an origin with a
    missing actual value is NaN (the test leaves it out).

    Args:
        forecast: ``(origins, horizon, series)`` one forecast (a baseline's, a seed median's).
        actual: ``(origins, horizon, series)``, NaN where missing.

    Returns:
        ``(origins,)`` float64.
    """
    forecast = np.asarray(forecast, np.float64)
    actual = _check_actual(actual, forecast.shape)
    return np.mean(np.square(forecast - actual), axis=(1, 2))


def lowest(scores: Sequence[float]) -> int:
    """The position of the lowest score; a tie keeps the earlier (the candidates' order).

    The one choice rule of candidates scored on a validation tail (normalisations, kinds).
    """
    return min(range(len(scores)), key=lambda k: (scores[k], k))


def verdict(
    scores: Mapping[str, Any],
    *,
    lower_is_better: bool = True,
    metric: str = "RMSE",
    noise: str = "the seed noise",
    origin_losses: Mapping[str, Any] | None = None,
    horizon: int = 1,
) -> Verdict:
    """The best model by mean score, and the models that tie with it within the noise.

    The tie rule: model ``m`` ties with the best model ``b`` when
    ``|mean(m) - mean(b)| <= max(std(b), std(m))``, with the sample standard deviations over
    their samples (0 for a single sample, so a baseline ties only within the neural model's
    spread). A gap smaller than one standard deviation of either model is within what
    another draw of seeds (or folds) could reverse, so the sentence does not name a winner
    over it. ``compare_seeds`` gives the Mann-Whitney test for a pair.

    A gap beyond that noise is called a clear margin only when the best model's forecasts
    also beat the runner-up's across the test origins: a Diebold-Mariano test of their
    ``origin_losses`` (``diebold_mariano``) with p below ``SIGNIFICANCE`` and the best
    model's losses the lower. The same test breaks a tie: a model within the noise whose
    forecast is significantly worse across the origins (a wide spread over seeds that one
    wild seed makes) does not tie. Without ``origin_losses`` the sentence says the gap is
    beyond the noise, and no more.

    Non-finite samples are left out of the means (``ScoreSummary.worst`` shows them); a
    model with no finite sample is named at the end of the sentence and never best.

    Args:
        scores: per model, its ``(samples,)`` scores: seeds, or folds (a baseline has one
            sample).
        lower_is_better: whether a lower score is better (RMSE) or a higher one.
        metric: the score's name, as the report shows it.
        noise: what the spread is, for the sentence (``"the spread over folds"``).
        origin_losses: per model, ``(origins,)`` losses of its forecast (one forecast: a
            baseline's, a seed median's) at the test origins, e.g. squared errors.
        horizon: steps ahead of each forecast (the test's lag window).

    Returns:
        The verdict.

    Raises:
        ValueError: ``scores`` is empty, a model's scores are not 1-D or are empty, or no model
            has a finite score.

    Example:
        >>> v = verdict({"stacked": [16.5, 17.4, 18.3], "stateful": [17.2, 18.0, 18.8]})
        >>> v.best, v.ties
        ('stacked', ('stateful',))
        >>> v.sentence
        'By RMSE, stacked is best (17.4 ± 0.9); stateful (18.0 ± 0.8) is within the seed noise, so they tie.'
        >>> far = verdict({"a": [10.0], "b": [10.2]}, origin_losses={"a": [1, 2, 3], "b": [2, 1, 4]})
        >>> far.sentence
        'By RMSE, a is best (10): next is b (10.2), a gap beyond the seed noise but not significant across the 3 test origins (Diebold-Mariano p = 0.67).'
    """  # noqa: E501
    if not scores:
        raise ValueError("scores is empty; pass {model name: (samples,) scores} for each model")
    summaries = summary(scores, lower_is_better=lower_is_better)
    finite = [name for name, score in summaries.items() if math.isfinite(score.mean)]
    if not finite:
        raise ValueError(
            f"no model has a finite {metric} score ({list(summaries)}); check the flagged seeds"
        )
    sign = 1.0 if lower_is_better else -1.0
    ranking = sorted(finite, key=lambda name: sign * summaries[name].mean)  # stable on ties
    best, others = ranking[0], ranking[1:]
    top = summaries[best]

    def across(name: str) -> DieboldMariano | None:
        """The best model's forecast against ``name``'s across the origins, when both have one."""
        if origin_losses is None or best not in origin_losses or name not in origin_losses:
            return None
        return diebold_mariano(origin_losses[best], origin_losses[name], horizon)

    def clearly_worse(test: DieboldMariano | None) -> bool:
        # significant, and the best model's losses the lower (a negative statistic)
        return test is not None and test.p_value < SIGNIFICANCE and test.statistic < 0

    def within_noise(name: str) -> bool:
        return abs(summaries[name].mean - top.mean) <= max(top.std, summaries[name].std)

    # within the noise, unless the forecasts say otherwise across the origins
    ties = tuple(name for name in others if within_noise(name) and not clearly_worse(across(name)))
    head = f"By {metric}, {best} is best"
    if not others:
        sentence = f"By {metric}, {_with_spread(best, top)} is the only model with a finite score."
    elif ties:
        verb = "is" if len(ties) == 1 else "are"
        tied = _join([_with_spread(name, summaries[name]) for name in ties])
        sentence = f"{head} ({_mean_and_spread(top)}); {tied} {verb} within {noise}, so they tie."
    else:
        runner = others[0]
        test = across(runner)
        where = (
            ""
            if test is None
            else f" across the {test.origins} test origins (Diebold-Mariano p = "
            f"{format_p(test.p_value)})"
        )
        next_one = f"next is {_with_spread(runner, summaries[runner])}"
        if clearly_worse(test):
            gap = f"within {noise} but" if within_noise(runner) else ""
            sentence = (
                f"{head} by a clear margin ({_mean_and_spread(top)}): {next_one}, "
                f"{gap + ' ' if gap else ''}significantly worse{where}."
            )
        else:
            if test is None:
                verdict_of_test = "(no test across origins was run)"
            elif test.p_value < SIGNIFICANCE:  # the other way: the runner-up's losses lower
                verdict_of_test = f"but its forecast is significantly better{where}"
            else:
                verdict_of_test = f"but not significant{where}"
            sentence = (
                f"{head} ({_mean_and_spread(top)}): {next_one}, a gap beyond {noise} "
                f"{verdict_of_test}."
            )
    missing = [name for name in summaries if name not in finite]
    if missing:
        sentence += f" No finite {metric} for {_join(missing)}."
    return Verdict(
        best=best,
        ties=ties,
        ranking=tuple(ranking),
        summaries=summaries,
        sentence=sentence,
    )
