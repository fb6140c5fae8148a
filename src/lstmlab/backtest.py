"""A backtest laid out as statsforecast's ``cross_validation``: ``Forecaster.cross_validation``.

In every series the last window ends at its last reading, and each window's cutoff (its last
training reading) is ``step`` readings after the one before. A model is trained afresh for
every window on every series up to its cutoff (``refit``), or trained once up to the first
cutoff and then carried through the readings since, its weights fixed, as a live model runs.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.checks import check_int_range, check_positive_int
from lstmlab.data.frames import TrainingData
from lstmlab.defaults import MAX_HORIZON
from lstmlab.pipeline import bound_columns

__all__ = ["backtest", "backtest_windows"]


def backtest_windows(
    horizon: Any, windows: Any, step: Any, level: Any, *, validation: float
) -> tuple[int, int, int, list[tuple[float, str, str]]]:
    """A backtest's layout and interval columns, checked before any data is read.

    Args:
        horizon: steps forecast from each cutoff.
        windows: how many cutoffs.
        step: readings between two cutoffs; ``None`` for ``horizon``.
        level: the intervals' levels (``lstmlab.pipeline.bound_columns``), or ``None``.
        validation: the model's validation fraction (intervals are calibrated on it).

    Returns:
        ``(horizon, windows, step, bounds)``.

    Raises:
        ValueError: a bad horizon, window count, step or level; a level without validation.
    """
    horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
    windows = check_positive_int("windows", windows, fix="pass e.g. windows=3")
    step = horizon if step is None else check_positive_int("step", step, fix="pass e.g. 1")
    bounds = bound_columns(level)
    if bounds and not validation:
        raise ValueError(
            "intervals are calibrated on the validation tail, and this forecaster has "
            "validation=0; pass validation=0.2, or leave level out"
        )
    return horizon, windows, step, bounds


def backtest(
    fit: Callable[[TrainingData], Any],
    parsed: TrainingData,
    *,
    horizon: int,
    windows: int,
    step: int,
    refit: bool,
    bounds: Sequence[tuple[float, str, str]],
) -> pd.DataFrame:
    """Forecast every window's next ``horizon`` readings from a model trained on its past.

    Args:
        fit: data up to a cutoff -> a fitted ``Forecaster``.
        parsed: the checked data (``parse_training_data``, ``check_outliers``).
        horizon: steps forecast from each cutoff.
        windows: how many cutoffs.
        step: readings between two cutoffs.
        refit: a model trained afresh for every window; else one, carried on.
        bounds: the interval columns (``lstmlab.pipeline.bound_columns``).

    Returns:
        What ``Forecaster.cross_validation`` returns.

    Raises:
        ValueError: a series too short for the windows; anything ``fit`` refuses.
    """
    ends = _window_ends(parsed, horizon, windows, step)
    columns = list(parsed.columns)
    frames = []
    model: Any = None
    for k in range(windows):
        if refit or model is None:
            part = dataclasses.replace(
                parsed,
                values={i: v[: ends[i][k]] for i, v in parsed.values.items()},
                times={i: None if t is None else t[: ends[i][k]] for i, t in parsed.times.items()},
            )
            model = fit(part)
        else:
            since = {i: slice(ends[i][k - 1], ends[i][k]) for i in parsed.values}
            model.observe_many(
                {i: v[since[i]] for i, v in parsed.values.items()},
                {i: None if t is None else t[since[i]] for i, t in parsed.times.items()},
                plausible_factor=None,  # a backtest refuses no reading of its data
            )
        frame = model.forecast(horizon)
        column = (
            np.zeros(len(frame), int)
            if "target" not in frame
            else frame["target"].map({c: j for j, c in enumerate(columns)}).to_numpy()
        )
        if bounds:
            _add_bounds(frame, model, bounds, horizon, column, len(columns))
        ids = frame["series_id"].to_numpy()
        end = np.array([ends[i][k] for i in ids])
        rows = end + frame["step"].to_numpy() - 1
        frame.insert(
            1,
            "cutoff",
            [
                end[r] - 1 if parsed.times[i] is None else parsed.times[i][end[r] - 1]
                for r, i in enumerate(ids)
            ],
        )
        at = frame.columns.get_loc("forecast")
        frame.insert(
            at,
            "actual",
            [parsed.values[i][row, j] for i, row, j in zip(ids, rows, column, strict=True)],
        )
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    keys = ["series_id", "cutoff", "step"] + (["target"] if "target" in out else [])
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _window_ends(
    parsed: TrainingData, horizon: int, windows: int, step: int
) -> dict[str, list[int]]:
    """Each series' window ends (the readings before each cutoff, cutoff included)."""
    span = horizon + (windows - 1) * step  # readings after the first cutoff
    ends = {}
    for series_id, values in parsed.values.items():
        first = len(values) - span
        if first < 1:
            raise ValueError(
                f"series {series_id!r} has {len(values)} readings; {windows} window(s) of "
                f"{horizon} step(s), {step} apart, need more than {span}; pass fewer "
                "windows, a smaller step or horizon, or leave the series out"
            )
        ends[series_id] = [first + k * step for k in range(windows)]
    return ends


def _add_bounds(
    frame: pd.DataFrame,
    model: Any,
    bounds: Sequence[tuple[float, str, str]],
    horizon: int,
    column: np.ndarray,
    columns: int,
) -> None:
    """The interval bounds of every row of ``frame``, added in place.

    Bounds per step up to the model's calibrated steps, infinite beyond (too few residuals),
    as a step with too few residuals is within them.
    """
    reach = min(horizon, model.calibrated_steps)
    half = {
        (i, value): np.concatenate(
            [model.halfwidths(i, value, reach), np.full((horizon - reach, columns), np.inf)]
        )
        for i in frame["series_id"].unique()
        for value, _, _ in bounds
    }
    for value, lower, upper in bounds:
        width = np.array(
            [
                half[(i, value)][ahead - 1, j]
                for i, ahead, j in zip(frame["series_id"], frame["step"], column, strict=True)
            ]
        )
        frame[lower] = frame["forecast"] - width
        frame[upper] = frame["forecast"] + width
