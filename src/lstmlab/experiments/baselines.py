"""Statistical baselines on ``compare``'s split and forecast origins (statsforecast).

The reference a practitioner already trusts: persistence, and statsforecast's AutoETS,
AutoTheta, AutoARIMA and SeasonalNaive, scored on exactly the forecasts the neural models
make. The protocol is ``compare``'s: the targets ``(time, series)`` in original units, a
training part of ``n_train`` steps, and forecast origins (the first forecast step of each
forecast, all in the test part), each forecast ``horizon`` steps ahead from the actual values
before its origin ("rolling origins with actual values, models trained once").

Each statistical model is fitted ONCE per series on ``targets[:n_train]`` (the automatic
selection and the parameters see the training part only) and applied at every origin ``o``
with statsforecast's ``forward(y=targets[:o], h=horizon)``: the fitted model's structure and
parameters are kept and only its states are run through the actual values up to the origin
(for ETS and ARIMA the smoothing / Kalman recursions, for SeasonalNaive the last season
itself). ``forward`` from the first origin ``n_train`` therefore equals the fitted model's
``predict``, and the forecasts equal statsforecast's own
``StatsForecast.cross_validation(step_size=1, refit=False)`` with one window per origin.

One statsforecast behaviour is worth knowing: AutoTheta's ``forward`` re-runs the seasonal
test and the classical decomposition on the data up to each origin (its theta parameters stay
those fitted), and SeasonalNaive's interval width is re-estimated from the residuals up to
each origin.

Season lengths are statsforecast's ``season_length``; where a model cannot estimate the season
from the training part, ``season_length_for`` falls back to 1 and says why, and the
``BaselineForecast.description`` carries that sentence, as it carries every warning
statsforecast raised (nothing is changed silently).

statsforecast is imported inside the functions that need it (its import takes seconds and
``lstmlab --help`` must not pay it).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from lstmlab.checks import check_choice, check_fraction, check_positive_int
from lstmlab.experiments.settings import BASELINES, NAIVE, STATISTICAL  # JAX-free names

__all__ = [
    "ARIMA_LONG_SEASON",
    "BASELINES",
    "DESCRIPTIONS",
    "ETS_MAX_SEASON",
    "LABELS",
    "NAIVE",
    "STATISTICAL",
    "BaselineForecast",
    "baseline_forecasts",
    "season_length_for",
    "statistical_options",
]


LABELS = MappingProxyType(
    {
        "persistence": "persistence (last value)",
        "auto_ets": "AutoETS (statsforecast)",
        "auto_theta": "AutoTheta (statsforecast)",
        "auto_arima": "AutoARIMA (statsforecast)",
        "seasonal_naive": "seasonal naive (statsforecast)",
    }
)
"""A short label per baseline, for tables."""

DESCRIPTIONS = MappingProxyType(
    {
        "persistence": "the last observed value, for every step ahead",
        "auto_ets": "exponential smoothing (error, trend, season) chosen by AICc",
        "auto_theta": "the theta model (standard, optimised, dynamic) chosen by MSE, on a "
        "seasonally decomposed series where statsforecast's seasonal test finds a season",
        "auto_arima": "seasonal ARIMA chosen by a stepwise AICc search (Hyndman-Khandakar)",
        "seasonal_naive": "the value one season earlier (the latest of the same phase beyond "
        "one season ahead)",
    }
)
"""What each baseline forecasts, in one phrase; ``BaselineForecast.description`` adds how."""

ETS_MAX_SEASON = 24
"""statsforecast's ETS, like R's ``forecast::ets``, fits no seasonal model beyond this season."""

ARIMA_LONG_SEASON = 24
"""From this season on, AutoARIMA's search is bounded (``statistical_options``)."""

# statsforecast's own options that bound AutoARIMA's search on a long season: its default
# stepwise search fits up to 94 exact seasonal models, each a Kalman filter with a state of
# the season's length, and ran for over 25 minutes on a weekly series (season 52) and on a
# half-hourly one (season 48). Fitted by conditional sums of squares (R's auto.arima does the
# same for long series), with at most one seasonal AR and MA term and 20 models, it took 24 s
# on 3,700 half-hourly readings.
_LONG_SEASON_ARIMA = {"approximation": True, "nmodels": 20, "max_P": 1, "max_Q": 1}

# What forward() keeps fixed and what it re-estimates at each origin, per model.
_FORWARD = {
    "auto_ets": "model and parameters fixed, states run through the actual values",
    "auto_theta": "theta model and parameters fixed; statsforecast re-runs its seasonal test "
    "and decomposition on the data up to each origin",
    "auto_arima": "orders and coefficients fixed, the Kalman filter run through the actual values",
    "seasonal_naive": "the last season before each origin; the interval width from the "
    "residuals up to the origin",
}

# The statsforecast classes, by baseline name (imported lazily).
_CLASSES = {
    "auto_ets": "AutoETS",
    "auto_theta": "AutoTheta",
    "auto_arima": "AutoARIMA",
    "seasonal_naive": "SeasonalNaive",
}


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class BaselineForecast:
    """One baseline's forecasts from every origin, in ``compare``'s layout.

    Attributes:
        name: one of ``BASELINES``.
        label: a short label for tables (``LABELS[name]``).
        description: what was fitted, on what, how it was applied, and every fallback or
            statsforecast warning.
        forecasts: ``(1, origins, horizon, series)`` float64, original units (the leading
            axis is ``compare``'s seed axis: a baseline is one "seed").
        lower: ``(1, origins, horizon, series)`` float64 lower bounds of the prediction
            interval at ``level``, or None (persistence, or ``level=None``).
        upper: as ``lower``, the upper bounds.
        level: the interval's nominal coverage (e.g. 0.9), or None without intervals.
        seconds: wall time of the fits and forecasts.
        params: one short text per series of what the automatic model chose (e.g.
            ``"ETS(M,A,M)"``, ``"ARIMA(0,1,1)(0,1,1)[12]"``); ``""`` where there is no choice.
        season_length: the ``season_length`` given to statsforecast (1 for none), or None
            for persistence.
    """

    name: str
    label: str
    description: str
    forecasts: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    level: float | None
    seconds: float
    params: tuple[str, ...]
    season_length: int | None


def season_length_for(name: str, season: int | None, n_train: int) -> tuple[int, str]:
    """The ``season_length`` a statistical baseline gets, and why if it is not ``season``.

    The rules, so that no model is handed a season it cannot estimate from the training part:

    * no season (None or 1): 1;
    * fewer than two full seasons in the training part: 1 for AutoETS, AutoTheta and
      AutoARIMA (a seasonal pattern needs at least two seasons to be estimated and tested);
    * AutoETS with a season above ``ETS_MAX_SEASON`` (24): 1, as statsforecast's ETS (like
      R's ``forecast::ets``) fits no seasonal model there;
    * AutoTheta with a season of 2 or 3: 1, as statsforecast's Theta decomposes seasons of 4
      or more only;
    * SeasonalNaive needs a season and a training part of at least one season (else
      ``ValueError``).

    Args:
        name: one of ``STATISTICAL``.
        season: the season length in steps (e.g. 12 for monthly data), or None.
        n_train: steps of the training part.

    Returns:
        ``(season_length, note)``: ``note`` is ``""`` when ``season_length`` is ``season``
        (or 1 without a season), else a sentence saying what changed and why.

    Raises:
        ValueError: an unknown name, a season that is not a positive int, or seasonal naive
            without a season or with a training part shorter than one season.

    Example:
        >>> season_length_for("auto_ets", 48, 2700)[0]
        1
        >>> season_length_for("auto_arima", 12, 96)
        (12, '')
    """
    check_choice("name", name, STATISTICAL)
    n_train = check_positive_int("n_train", n_train)
    if season is not None:
        season = check_positive_int("season", season, fix="pass e.g. --seasons 12")
    if name == "seasonal_naive":
        if season is None:
            raise ValueError(
                "seasonal_naive needs a season length, got season=None; pass --seasons "
                "(e.g. --seasons 12 for monthly data) or leave seasonal_naive out"
            )
        if n_train < season:
            raise ValueError(
                f"seasonal_naive needs a training part of at least one season, got "
                f"{n_train} training steps for season {season}; pass a shorter --seasons or "
                "a larger --split"
            )
        return season, ""
    if season is None or season == 1:
        return 1, ""
    label = LABELS[name]
    if n_train < 2 * season:
        return 1, (
            f"{label}: season {season} not used (the training part holds {n_train} steps, "
            f"fewer than two seasons); fitted without a season"
        )
    if name == "auto_ets" and season > ETS_MAX_SEASON:
        return 1, (
            f"{label}: season {season} not used (statsforecast's ETS, like R's "
            f"forecast::ets, fits no seasonal model beyond season {ETS_MAX_SEASON}); fitted "
            "without a season"
        )
    if name == "auto_theta" and season < 4:
        return 1, (
            f"{label}: season {season} not used (statsforecast's Theta decomposes seasons of "
            "4 or more only); fitted without a season"
        )
    return season, ""


def statistical_options(name: str, season_length: int) -> dict[str, Any]:
    """The keyword arguments of a statistical baseline's statsforecast class.

    ``season_length``, and for AutoARIMA with a season of ``ARIMA_LONG_SEASON`` or more the
    options that bound its search (approximation, at most one seasonal AR and MA term, 20
    models), so that every default baseline finishes. ``compare`` and the benchmarks use them
    alike.

    Example:
        >>> statistical_options("auto_arima", 12)
        {'season_length': 12}
        >>> sorted(statistical_options("auto_arima", 48))
        ['approximation', 'max_P', 'max_Q', 'nmodels', 'season_length']
    """
    check_choice("name", name, tuple(_CLASSES), fix="pass e.g. name='auto_ets'")
    options: dict[str, Any] = {"season_length": check_positive_int("season_length", season_length)}
    if name == "auto_arima" and season_length >= ARIMA_LONG_SEASON:
        options.update(_LONG_SEASON_ARIMA)
    return options


def _check_inputs(
    targets: Any, n_train: Any, origins: Any, horizon: Any
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Validate and normalise the split; see ``baseline_forecasts``."""
    array = np.asarray(targets, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]  # (time,) -> (time, 1)
    if array.ndim != 2:
        raise ValueError(
            f"targets must be (time,) or (time, series), got shape {array.shape}; pass a 1-D "
            "or 2-D array"
        )
    steps = array.shape[0]
    n_train = check_positive_int("n_train", n_train)
    horizon = check_positive_int("horizon", horizon)
    if n_train > steps:
        raise ValueError(
            f"n_train is {n_train} but the series has {steps} steps; pass n_train <= {steps}"
        )
    first_origins = np.asarray(origins)
    if first_origins.ndim != 1 or first_origins.size == 0:
        raise ValueError(
            f"origins must be a non-empty 1-D array of steps, got shape {first_origins.shape}; "
            "pass e.g. np.arange(n_train, len(targets) - horizon + 1)"
        )
    if not np.issubdtype(first_origins.dtype, np.integer):
        raise ValueError(
            f"origins must hold integer steps, got dtype {first_origins.dtype}; pass an int array"
        )
    first_origins = first_origins.astype(np.int64)
    low, high = int(first_origins.min()), int(first_origins.max())
    if low < n_train:
        raise ValueError(
            f"every origin must lie in the test part (>= n_train = {n_train}), got origin "
            f"{low}; pass origins from n_train on"
        )
    if high + horizon > steps:
        raise ValueError(
            f"origin {high} with horizon {horizon} reaches step {high + horizon - 1}, beyond "
            f"the series ({steps} steps, last step {steps - 1}); pass origins up to "
            f"{steps - horizon}"
        )
    used = array[:high]  # every value before some origin: the data the baselines see
    bad = ~np.isfinite(used)
    if np.any(bad):
        step, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"targets hold {int(np.count_nonzero(bad))} NaN or infinite value(s) before the "
            f"last forecast origin {high} (first at step {step}, series {column}); fill them "
            "first, from the training part only (e.g. --missing interpolate)"
        )
    return array, n_train, first_origins, horizon


def _percent(level: float) -> int | float:
    """The level in statsforecast's percent, an int where exact (its keys read ``lo-90``)."""
    percent = round(level * 100, 6)
    return int(percent) if float(percent).is_integer() else percent


def _params_text(name: str, model: Any) -> str:
    """What the automatic model chose, from statsforecast's fitted ``model_`` dict."""
    fitted = model.model_
    if name == "auto_ets":
        return str(fitted.get("method", ""))
    if name == "auto_theta":
        text = str(fitted.get("modeltype", ""))
        if fitted.get("decompose", False):
            text += f", {fitted['decomposition_type']} decomposition (season {fitted['m']})"
        return text
    if name == "auto_arima":
        from statsforecast.arima import arima_string

        return arima_string(fitted, padding=False).strip()
    return ""


def _statistical(
    name: str,
    targets: np.ndarray,
    n_train: int,
    origins: np.ndarray,
    horizon: int,
    season_length: int,
    percent: int | float | None,
    record: Callable[[str], None],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    """Fit once per series, forward from every origin; arrays ``(origins, horizon, series)``."""
    import statsforecast.models

    model_class = getattr(statsforecast.models, _CLASSES[name])
    shape = (origins.size, horizon, targets.shape[1])
    forecasts = np.empty(shape)
    lower = np.empty(shape) if percent is not None else None
    upper = np.empty(shape) if percent is not None else None
    level = None if percent is None else [percent]
    params = []
    for j in range(targets.shape[1]):
        y = np.ascontiguousarray(targets[:, j])
        stage = f"fitting series {j} on its {n_train} training steps"
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = model_class(**statistical_options(name, season_length))
                model = model.fit(y[:n_train])
                params.append(_params_text(name, model))
                for row, origin in enumerate(origins):
                    stage = f"forecasting series {j} from origin {origin}"
                    out = model.forward(y=y[:origin], h=horizon, level=level)
                    forecasts[row, :, j] = np.asarray(out["mean"], dtype=np.float64)
                    if percent is not None:
                        lower[row, :, j] = np.asarray(out[f"lo-{percent}"], dtype=np.float64)
                        upper[row, :, j] = np.asarray(out[f"hi-{percent}"], dtype=np.float64)
        except Exception as error:  # statsforecast raises bare Exception and others
            raise ValueError(
                f"{LABELS[name]} failed {stage}: {type(error).__name__}: {error}; leave "
                f"{name} out, or pass a longer training part (--split) or another --seasons"
            ) from error
        for warning in caught:
            record(f"series {j}: {warning.category.__name__}: {warning.message}")
    return forecasts, lower, upper, tuple(params)


def baseline_forecasts(
    name: str,
    targets: Any,
    n_train: int,
    origins: Any,
    horizon: int,
    *,
    season: int | None = None,
    level: float | None = 0.9,
) -> BaselineForecast:
    """One baseline's forecasts from every origin, on ``compare``'s split.

    Persistence repeats ``targets[o - 1]``. A statistical baseline is fitted once per series
    on ``targets[:n_train, j]`` and forecasts from each origin ``o`` with statsforecast's
    ``model.forward(y=targets[:o, j], h=horizon, level=[100 * level])`` (parameters fixed,
    states run through the actual values up to the origin); see the module docstring.

    Args:
        name: one of ``BASELINES``.
        targets: ``(time,)`` or ``(time, series)``, original units; every value before the
            last origin must be finite (later ones are not used).
        n_train: steps of the training part (the fit sees ``targets[:n_train]`` only).
        origins: ``(origins,)`` ints: the first forecast step of each forecast, each in
            ``[n_train, time - horizon]``.
        horizon: steps ahead from each origin.
        season: the season length in steps (e.g. 12 for monthly data), or None;
            ``seasonal_naive`` needs one; see ``season_length_for`` for when the other models
            fall back to none.
        level: nominal coverage of the prediction intervals (e.g. 0.9), or None for none;
            persistence has no interval.

    Returns:
        ``BaselineForecast`` with ``forecasts`` ``(1, origins, horizon, series)``.

    Raises:
        ValueError: an unknown name; targets that are not 1-D or 2-D; NaN or infinite values
            before the last origin; origins outside ``[n_train, time - horizon]``;
            seasonal naive without a season; a statsforecast model that fails to fit or
            forecast (the message names the series and origin).

    Example:
        >>> y = np.arange(10.0)
        >>> result = baseline_forecasts("persistence", y, 6, np.array([6, 7]), 2)
        >>> result.forecasts[0, :, :, 0].tolist()
        [[5.0, 5.0], [6.0, 6.0]]
    """
    started = time.perf_counter()
    check_choice("name", name, BASELINES, fix="pass e.g. name='auto_ets'")
    targets, n_train, origins, horizon = _check_inputs(targets, n_train, origins, horizon)
    if season is not None:
        season = check_positive_int("season", season, fix="pass e.g. --seasons 12")
    if level is not None:
        level = check_fraction("level", level, fix="pass e.g. level=0.9 for 90% intervals")
    num_series = targets.shape[1]
    if name == "persistence":
        last = targets[origins - 1]  # (origins, series)
        # (origins, series) -> (1, origins, horizon, series)
        forecasts = np.repeat(last[None, :, None, :], horizon, axis=2)
        return BaselineForecast(
            name=name,
            label=LABELS[name],
            description=DESCRIPTIONS[name],
            forecasts=forecasts,
            lower=None,
            upper=None,
            level=None,
            seconds=time.perf_counter() - started,
            params=("",) * num_series,
            season_length=None,
        )
    season_length, note = season_length_for(name, season, n_train)
    percent = None if level is None else _percent(level)
    caught: list[str] = []

    def record(message: str) -> None:
        if message not in caught:
            caught.append(message)

    forecasts, lower, upper, params = _statistical(
        name, targets, n_train, origins, horizon, season_length, percent, record
    )
    from importlib.metadata import version

    options = ", ".join(f"{k}={v}" for k, v in statistical_options(name, season_length).items())
    parts = [
        f"{DESCRIPTIONS[name]}; statsforecast {version('statsforecast')} "
        f"{_CLASSES[name]}({options}) fitted once per series on the "
        f"{n_train} training steps, then forward() from each of the {origins.size} origins "
        f"with the actual values before it ({_FORWARD[name]})"
    ]
    if percent is not None:
        parts.append(f"{percent}% prediction intervals from statsforecast")
    if note:
        parts.append(note)
    non_finite = int(np.count_nonzero(~np.isfinite(forecasts)))
    if non_finite:
        parts.append(f"{non_finite} non-finite forecast value(s)")
    if caught:
        parts.append("statsforecast warned: " + " | ".join(caught))
    return BaselineForecast(
        name=name,
        label=LABELS[name],
        description="; ".join(parts),
        forecasts=forecasts[None],  # (origins, horizon, series) -> (1, ...)
        lower=None if lower is None else lower[None],
        upper=None if upper is None else upper[None],
        level=level,
        seconds=time.perf_counter() - started,
        params=params,
        season_length=season_length,
    )
