"""The one forecasting object: ``Forecaster`` fits, forecasts, observes, saves and plots.

From a pandas DataFrame to a forecast with timestamps and a plot::

    import pandas as pd
    from lstmlab import Forecaster
    data = pd.read_csv("../shared/data/airline_passengers.csv", index_col=0, parse_dates=True)
    fc = Forecaster(model="stateful").fit(data)
    fc.forecast(12); fc.plot(horizon=12).savefig("forecast.png")

What it does, and where:

- ``fit`` reads a wide DataFrame (a column per series), a long one (series id, time, value:
  NeuralForecast's ``unique_id, ds, y`` or ``series_id, time, value``), a Series or a NumPy
  array; fits one scaler per series on its own values; trains one global model over all
  series with ``seeds`` trainings side by side through the one training driver
  (``lstmlab.core.train.fit``); then reads every series' whole history into its state.
- ``forecast`` rolls every series forward with the one rollout (``lstmlab.core.rollout``),
  one compiled program for all seeds, and returns the median over seeds as a tidy DataFrame
  with real timestamps.
- ``observe`` advances a series' state through new readings, in one transaction of the one
  state store (``lstmlab.live.state_store.SeriesStore``) together with the readings'
  idempotency record; ``forecast`` continues from it.
- ``save``/``load`` keep the model in a model folder (``lstmlab.model_folder``) and the
  per-series states in the folder's store, loaded lazily: a loaded forecaster reads a
  series' state from the store on first use (and on every use: a state written by
  ``lstmlab observe`` or the service in between is never shadowed by a stale copy).

What a series' state holds (``SeriesState``):

- stateful models: one ``LSTMState`` per layer with ``(seeds, units)`` arrays, the state
  reached after reading the whole series from a zero state;
- window models (stateless LSTM, MLP): the last ``window`` readings;
- both: the next-step prediction of every seed after the last reading, the last timestamp,
  the count of readings seen, and the series' own scaler.

Exactness: observing a series in pieces of any sizes gives the same predictions as observing
it at once (to float32 rounding; ``lstmlab.core.rollout.read`` reads in power-of-two pieces,
so only a handful of shapes are ever compiled). Multi-step forecasts feed the predictions
back through the model from a copy of the state; the stored state changes only with real
readings.
"""

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmlab.checks import (
    check_choice,
    check_int_range,
    check_non_negative_int,
    check_positive_int,
    check_positive_number,
    check_series_id,
)
from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    Params,
    apply,
    init_state,
)
from lstmlab.core.rollout import read, rollout
from lstmlab.core.train import TrainConfig, fit, init_train_states
from lstmlab.data.layouts import make_sample_batches, make_series_streams, make_windows
from lstmlab.data.scaling import SCALER_KINDS, Scaler, fit_scaler
from lstmlab.live.state_store import NO_TIME, SeriesStore, StoredState
from lstmlab.model_folder import SavedModel, load_model, open_store, save_model

__all__ = [
    "MAX_HORIZON",
    "MODEL_KINDS",
    "Forecast",
    "Forecaster",
    "ForecasterConfig",
    "Recipe",
    "SeriesState",
    "decode_states",
    "encode_states",
    "parse_timestamps",
]

MODEL_KINDS = ("stateful", "stateless", "stacked", "mlp")
MAX_HORIZON = 10_000


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecasterConfig:
    """The model a ``Forecaster`` trains, and how: the one set of defaults.

    ``Forecaster(...)``, ``lstmlab fit`` and ``lstmlab compare`` all read their defaults from
    this class, so the same words mean the same model everywhere. The values are the ones
    measured best on real series by ``lstmlab compare`` (``bench/`` and the README).

    Attributes:
        model: ``"stateful"`` (one LSTM layer carrying its state along each series),
            ``"stacked"`` (two stateful LSTM layers), ``"stateless"`` (one LSTM layer reading
            a window from zero state) or ``"mlp"`` (Dense layers on the flattened window).
        window: readings per training sample: the input window of the stateless LSTM and
            the MLP, the chunk length (truncated back-propagation) of the stateful models.
        units: units per LSTM layer (hidden sizes for the MLP); ``()`` picks the model's
            default (``default_units``).
        epochs: training epochs.
        learning_rate: Adam step size (Keras' Adam otherwise).
        batch_size: samples per batch for the window models; streams per series for the
            stateful ones. ``None`` picks the model's default (``default_batch_size``).
        seeds: models trained side by side from different initial weights (one vectorised
            program); forecasts are their median.
        seed: the first seed.
        scaler: ``"minmax"`` (onto [0, 1] over the training part) or ``"standard"``, fitted
            per series.
    """

    model: str = "stateful"
    window: int = 6
    units: tuple[int, ...] = ()
    epochs: int = 200
    learning_rate: float = 3e-3
    batch_size: int | None = None
    seeds: int = 5
    seed: int = 0
    scaler: str = "minmax"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        check_choice("model", self.model, MODEL_KINDS)
        check_positive_int("window", self.window)
        for index, units in enumerate(self.units):
            check_positive_int(f"units[{index}]", units)
        check_non_negative_int("epochs", self.epochs)
        check_positive_int("seeds", self.seeds)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_non_negative_int("seed", self.seed, fix="pass e.g. 0")
        check_positive_number("learning_rate", self.learning_rate, fix="pass e.g. 3e-3")
        check_choice("scaler", self.scaler, SCALER_KINDS)

    @property
    def stateful(self) -> bool:
        """Whether the model carries its recurrent state along each series."""
        return self.model in ("stateful", "stacked")

    @property
    def default_units(self) -> tuple[int, ...]:
        """The units used when ``units`` is ``()``."""
        return {"stateful": (16,), "stacked": (16, 16), "stateless": (16,), "mlp": (32,)}[
            self.model
        ]

    @property
    def default_batch_size(self) -> int:
        """The batch size used when ``batch_size`` is ``None``."""
        return 1 if self.stateful else 4

    @property
    def resolved_units(self) -> tuple[int, ...]:
        """``units``, or the model's default."""
        return self.units or self.default_units

    @property
    def resolved_batch_size(self) -> int:
        """``batch_size``, or the model's default."""
        return self.default_batch_size if self.batch_size is None else self.batch_size

    def model_config(self, columns: int) -> ModelConfig:
        """The network this config describes for ``columns`` values per reading.

        Args:
            columns: values per reading (the model reads and forecasts all of them).

        Returns:
            An ``LSTMConfig`` (stateful models return sequences: a next-step target at every
            step of the stream layout) or an ``MLPConfig``.
        """
        check_positive_int("columns", columns)
        if self.model == "mlp":
            return MLPConfig(
                hidden=self.resolved_units,
                timesteps=self.window,
                features=columns,
                outputs=columns,
            )
        return LSTMConfig(
            units=self.resolved_units,
            timesteps=self.window,
            features=columns,
            outputs=columns,
            stateful=self.stateful,
            return_sequences=self.stateful,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``ForecasterConfig(**d)`` rebuilds it)."""
        out = dataclasses.asdict(self)
        out["units"] = list(self.units)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Recipe:
    """How readings become model inputs.

    Attributes:
        kind: ``"stateful"``, ``"stacked"`` (stateful, several layers), ``"stateless"`` or
            ``"mlp"`` (window models); informative, the behaviour follows the model config.
        window: steps per training window (window models: the readings one forecast reads;
            stateful models: the chunk length of training).
        columns: the value columns of one reading; the model forecasts all of them.
        time_col: the timestamp column of the training data, or ``None``.
        freq: the pandas frequency of the readings (``"15min"``), or ``None`` for no grid
            check (only the order of timestamps is checked).
    """

    kind: str = "stateful"
    window: int = 1
    columns: tuple[str, ...] = ("value",)
    time_col: str | None = None
    freq: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        check_choice("model kind", self.kind, MODEL_KINDS, fix="pass e.g. kind='stateful'")
        check_positive_int("window", self.window)
        if not self.columns or not all(isinstance(c, str) and c for c in self.columns):
            raise ValueError(f"columns must be non-empty names, got {self.columns!r}")
        if self.freq is not None:
            to_offset(self.freq)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "window": self.window,
            "columns": list(self.columns),
            "time_col": self.time_col,
            "freq": self.freq,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        """Rebuild from ``to_dict`` output (other keys, such as ``config``, are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SeriesState:
    """What a series carries between calls (NumPy arrays, read-only by convention).

    Attributes:
        rnn: one ``LSTMState`` per layer with ``(seeds, units)`` float32 arrays; ``()`` for
            window models.
        recent: ``(k, columns)`` float32, the last ``k <= window`` scaled readings (window
            models; ``(0, columns)`` for stateful models).
        prediction: ``(seeds, columns)`` float32, every seed's scaled next-step prediction
            after the last reading, or ``None`` before the model can forecast.
        last_time: the last reading's timestamp in nanoseconds since the epoch, or ``None``.
        seen: readings observed so far.
        scaler: the series' own scaler (fitted on its training values; a new series gets the
            forecaster's default), or ``None`` for none.
    """

    rnn: tuple[LSTMState, ...]
    recent: np.ndarray
    prediction: np.ndarray | None
    last_time: int | None
    seen: int
    scaler: Scaler | None = None


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Forecast:
    """A forecast for one series (the median over seeds).

    Attributes:
        series_id: the series.
        values: ``(horizon, columns)`` float64 in the original units, or ``None`` while a
            window model has seen fewer than ``window`` readings.
        timestamps: ISO timestamps of the forecast steps, when the series has timestamps and
            the recipe a frequency; else ``None``.
        seen: readings observed so far.
        needed: readings still needed before a forecast exists (0 when ``values`` is set).
    """

    series_id: str
    values: np.ndarray | None
    timestamps: tuple[str, ...] | None
    seen: int
    needed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (values as nested lists)."""
        return {
            "series_id": self.series_id,
            "values": None if self.values is None else self.values.tolist(),
            "timestamps": None if self.timestamps is None else list(self.timestamps),
            "seen": self.seen,
            "needed": self.needed,
        }


# --------------------------------------------------------------------------- state encoding


def _state_arrays(
    config: ModelConfig, recipe: Recipe, state: SeriesState, seeds: int
) -> dict[str, np.ndarray]:
    """One series' state as named arrays (one row of ``encode_states``)."""
    columns = config.features
    arrays: dict[str, np.ndarray] = {}
    for layer, lstm_state in enumerate(state.rnn):
        for name in ("h", "c"):
            array = np.asarray(getattr(lstm_state, name), np.float32)  # (seeds, units)
            arrays[f"rnn.{layer}.{name}"] = array[0] if seeds == 1 else array
    window = 0 if config.stateful else recipe.window
    recent = np.zeros((window, columns), np.float32)
    k = min(len(state.recent), window)
    if k:
        recent[:k] = state.recent[-k:]
    prediction = np.zeros((seeds, columns), np.float32)
    if state.prediction is not None:
        prediction[:] = state.prediction
    arrays.update(
        recent=recent,
        recent_length=np.asarray(k, np.int64),
        prediction=prediction[0] if seeds == 1 else prediction,
        has_prediction=np.asarray(state.prediction is not None, np.uint8),
        last_time=np.asarray(NO_TIME if state.last_time is None else state.last_time, np.int64),
        seen=np.asarray(state.seen, np.int64),
    )
    if state.scaler is not None:
        arrays["scaler.offset"] = np.asarray(state.scaler.offset, np.float64)
        arrays["scaler.scale"] = np.asarray(state.scaler.scale, np.float64)
    return arrays


def _state_from_arrays(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    seeds: int,
    scaler_kind: str,
    label: str,
) -> SeriesState:
    """Inverse of ``_state_arrays``."""
    layers = len(config.units) if config.stateful else 0
    needed = [f"rnn.{layer}.{n}" for layer in range(layers) for n in ("h", "c")]
    needed += ["recent", "recent_length", "prediction", "has_prediction", "last_time", "seen"]
    missing = [name for name in needed if name not in arrays]
    if missing:
        raise ValueError(f"the stored state of {label} lacks {missing}; save the model again")

    def with_seeds(array: np.ndarray) -> np.ndarray:
        array = np.array(array, np.float32)  # a copy: never a view of a caller's buffer
        return array[None] if seeds == 1 else array  # (seeds, ...)

    rnn = tuple(
        LSTMState(h=with_seeds(arrays[f"rnn.{layer}.h"]), c=with_seeds(arrays[f"rnn.{layer}.c"]))
        for layer in range(layers)
    )
    for layer, lstm_state in enumerate(rnn):
        if lstm_state.h.shape != (seeds, config.units[layer]):
            raise ValueError(
                f"the stored state of {label} has shape {lstm_state.h.shape} in layer {layer}, "
                f"the model needs {(seeds, config.units[layer])}; save the model again"
            )
    k = int(arrays["recent_length"])
    last_time = int(arrays["last_time"])
    scaler = None
    if "scaler.offset" in arrays:
        scaler = Scaler(
            kind=scaler_kind,
            columns=recipe.columns,
            offset=tuple(np.asarray(arrays["scaler.offset"]).tolist()),
            scale=tuple(np.asarray(arrays["scaler.scale"]).tolist()),
        )
    return SeriesState(
        rnn=rnn,
        recent=np.array(arrays["recent"][:k], np.float32),
        prediction=with_seeds(arrays["prediction"]) if int(arrays["has_prediction"]) else None,
        last_time=None if last_time == NO_TIME else last_time,
        seen=int(arrays["seen"]),
        scaler=scaler,
    )


def encode_states(
    config: ModelConfig,
    recipe: Recipe,
    states: Mapping[str, SeriesState],
    *,
    seeds: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Stack per-series states into arrays (row ``i``: series ``i``) and a JSON description.

    Args:
        config: the model.
        recipe: its recipe.
        states: series id -> state.
        seeds: trainings side by side; with one, the seeds axis is left out.

    Returns:
        ``(arrays, meta)``: ``rnn.{layer}.h``/``.c`` ``(series, units)`` (``(series, seeds,
        units)``), ``recent`` ``(series, window, columns)`` (left-aligned, ``recent_length``
        valid rows), ``prediction`` ``(series, columns)`` with ``has_prediction``,
        ``last_time`` and ``seen`` ``(series,)`` int64, and ``scaler.offset``/``.scale``
        when the series have scalers; ``meta`` holds the series ids in row order.
    """
    rows = [_state_arrays(config, recipe, state, seeds) for state in states.values()]
    if not rows:
        empty = _state_arrays(config, recipe, _fresh_state(config, seeds, None), seeds)
        return {k: np.zeros((0, *v.shape), v.dtype) for k, v in empty.items()}, {"series": []}
    names = rows[0].keys()
    if any(row.keys() != names for row in rows):
        raise ValueError("every series needs a scaler, or none; give all series one")
    return {name: np.stack([row[name] for row in rows]) for name in names}, {"series": list(states)}


def decode_states(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    *,
    seeds: int = 1,
    scaler_kind: str = "minmax",
) -> dict[str, SeriesState]:
    """Inverse of ``encode_states``.

    Raises:
        ValueError: arrays missing or of the wrong shape for the model.
    """
    ids = list(meta.get("series", []))
    for name, array in arrays.items():
        if array.shape[0] != len(ids):
            raise ValueError(
                f"saved state {name!r} has {array.shape[0]} rows for {len(ids)} series; "
                "save the model again"
            )
    return {
        series_id: _state_from_arrays(
            config,
            recipe,
            {name: array[row] for name, array in arrays.items()},
            seeds,
            scaler_kind,
            f"series {series_id!r}",
        )
        for row, series_id in enumerate(ids)
    }


def _fresh_state(config: ModelConfig, seeds: int, scaler: Scaler | None) -> SeriesState:
    # Zeros as in ``init_state``, made in NumPy: no device round trip per new id.
    units = config.units if config.stateful else ()
    rnn = tuple(
        LSTMState(h=np.zeros((seeds, u), np.float32), c=np.zeros((seeds, u), np.float32))
        for u in units
    )
    return SeriesState(
        rnn=rnn,
        recent=np.zeros((0, config.features), np.float32),
        prediction=None,
        last_time=None,
        seen=0,
        scaler=scaler,
    )


# --------------------------------------------------------------------------- data


def parse_timestamps(series_id: str, timestamps: Sequence[Any]) -> np.ndarray:
    """Timestamps as int64 nanoseconds (time-zone aware ones converted to UTC).

    Args:
        series_id: for messages.
        timestamps: ISO strings, datetimes or ``pd.Timestamp``.

    Returns:
        ``(readings,)`` int64 nanoseconds since the epoch.

    Raises:
        ValueError: an unparseable or missing timestamp.
    """
    try:
        index = pd.DatetimeIndex(pd.to_datetime(list(timestamps)))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"series {series_id!r}: timestamps could not be parsed ({error}); pass ISO "
            "timestamps such as '2024-01-01T00:15:00'"
        ) from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.hasnans:
        raise ValueError(f"series {series_id!r}: a timestamp is missing (NaT); pass all")
    return index.as_unit("ns").asi8


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class _Data:
    """Training data in one form: series id -> values and timestamps."""

    values: dict[str, np.ndarray]  # (time, columns) float64
    times: dict[str, pd.DatetimeIndex | None]
    columns: tuple[str, ...]
    time_col: str | None
    freq: str | None


_LONG_LAYOUTS = (("unique_id", "ds", "y"), ("series_id", "time", "value"))


def _targets(target: Any) -> list[str] | None:
    if target is None:
        return None
    return [target] if isinstance(target, str) else [str(t) for t in target]


def _series_values(label: str, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{label}: no column(s) {missing}; the columns are {[str(c) for c in frame.columns]}"
        )
    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(
                f"{label}: column {column!r} is not numeric (dtype {frame[column].dtype}); "
                "pass time_col= for a time column, or target= to choose the value columns"
            )
    return frame[list(columns)].to_numpy(np.float64)


def _parse_data(
    data: Any, time_col: str | None, target: Any, freq: str | None, id_col: str | None
) -> _Data:
    """Any accepted input as series id -> values (and timestamps); see ``Forecaster.fit``."""
    targets = _targets(target)
    values: dict[str, np.ndarray] = {}
    times: dict[str, pd.DatetimeIndex | None] = {}
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "0")
    if isinstance(data, pd.DataFrame):
        frame = data
        names = {str(c) for c in frame.columns}
        if id_col is None and time_col is None and targets is None:
            for layout in _LONG_LAYOUTS:
                if set(layout) <= names:
                    id_col, time_col, targets = layout[0], layout[1], [layout[2]]
                    break
        if id_col is not None:
            if id_col not in frame.columns:
                raise ValueError(f"no id column {id_col!r}; the columns are {sorted(names)}")
            if time_col is None:
                raise ValueError(
                    f"a long DataFrame (id column {id_col!r}) needs time_col=; pass the name "
                    "of its time column"
                )
            if time_col not in frame.columns:
                raise ValueError(f"no time column {time_col!r}; the columns are {sorted(names)}")
            if targets is None:
                others = [str(c) for c in frame.columns if c not in (id_col, time_col)]
                if len(others) != 1:
                    raise ValueError(f"cannot tell the value column among {others}; pass target=")
                targets = others
            for series_id, group in frame.groupby(id_col, sort=False):
                group = group.sort_values(time_col)
                label = f"series {str(series_id)!r}"
                values[str(series_id)] = _series_values(label, group, targets)
                times[str(series_id)] = pd.DatetimeIndex(pd.to_datetime(group[time_col]))
            columns = tuple(targets)
        else:
            if time_col is not None:
                if time_col not in frame.columns:
                    raise ValueError(
                        f"no time column {time_col!r}; the columns are {sorted(names)}"
                    )
                frame = frame.set_index(time_col)
            index = frame.index
            stamped = isinstance(index, pd.DatetimeIndex)
            if stamped and time_col is None:
                time_col = None if index.name is None else str(index.name)
            chosen = targets if targets is not None else [str(c) for c in frame.columns]
            frame = frame.rename(columns=str)
            for column in chosen:
                column_values = _series_values(f"series {column!r}", frame, [column])
                # a wide frame's series may start and end at different rows: keep each one's
                # span, from its first to its last reading
                finite = np.flatnonzero(np.isfinite(column_values[:, 0]))
                first, last = (finite[0], finite[-1] + 1) if len(finite) else (0, 0)
                values[column] = column_values[first:last]
                times[column] = index[first:last] if stamped else None
            columns = ("value",)
    else:
        array = np.asarray(data)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise ValueError(
                f"data must be a DataFrame, a Series or a numeric array, got {type(data).__name__}"
                f" of dtype {array.dtype}; pass one of those"
            )
        if array.ndim not in (1, 2):
            raise ValueError(
                f"an array must be (time,) for one series or (time, series), got shape "
                f"{array.shape}"
            )
        matrix = array.astype(np.float64).reshape(len(array), -1)  # (time, series)
        for j in range(matrix.shape[1]):
            values[str(j)] = matrix[:, j : j + 1]
            times[str(j)] = None
        columns = ("value",)
        if freq is not None:
            raise ValueError(
                f"freq={freq!r} was given for an array, which has no timestamps; pass a "
                "DataFrame or Series with a DatetimeIndex, or leave freq out"
            )
    if not values:
        raise ValueError("no series to train on; pass data with at least one series")
    for series_id, array in values.items():
        bad = ~np.isfinite(array).all(axis=1)
        if len(array) == 0 or bad.any():
            where = (
                "is empty"
                if len(array) == 0
                else f"holds NaN or infinite values at row {int(np.argmax(bad))}"
            )
            raise ValueError(
                f"series {series_id!r} {where}; fill or drop those values before fitting"
            )
    freq = _check_freq(times, freq)
    return _Data(values=values, times=times, columns=columns, time_col=time_col, freq=freq)


def _infer_freq(index: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string (pandas 3 returns an offset when asked, else warns)."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(index)
    except (KeyError, pd.errors.OptionError):  # pandas before the option: a string
        return pd.infer_freq(index)
    return None if offset is None else offset.freqstr


def _check_freq(times: Mapping[str, pd.DatetimeIndex | None], freq: str | None) -> str | None:
    """The readings' frequency (inferred when not given); every series on its grid."""
    stamped = {i: t for i, t in times.items() if t is not None}
    if not stamped:
        return None
    if freq is None:
        inferred = set()
        for series_id, index in stamped.items():
            guess = _infer_freq(index) if len(index) >= 3 else None
            if guess is None:
                raise ValueError(
                    f"cannot infer the frequency of series {series_id!r} from its timestamps "
                    f"({len(index)} from {index[0] if len(index) else '-'}); its timestamps are "
                    "too few, irregular or have gaps: pass freq= (e.g. freq='MS' or '15min') "
                    "after filling the gaps"
                )
            inferred.add(guess)
        if len(inferred) > 1:
            raise ValueError(
                f"the series have different frequencies {sorted(inferred)}; pass freq= to "
                "choose one, or fit them separately"
            )
        freq = inferred.pop()
    offset = to_offset(freq)
    for series_id, index in stamped.items():
        grid = pd.date_range(index[0], periods=len(index), freq=offset)
        if not grid.equals(pd.DatetimeIndex(index)):
            given = pd.DatetimeIndex(index).as_unit("ns").asi8
            at = int(np.argmax(grid.as_unit("ns").asi8 != given))
            raise ValueError(
                f"series {series_id!r}: reading {at} has timestamp {index[at]}, expected "
                f"{grid[at]} (frequency {freq}): a gap or an off-grid reading; fill the gaps "
                "(e.g. frame.asfreq(freq).interpolate()) before fitting"
            )
    return freq


# --------------------------------------------------------------------------- compiled helpers


def _stack_rnn(states: Sequence[SeriesState]) -> tuple[LSTMState, ...]:
    """Per-series ``(seeds, units)`` states as ``(seeds, series, units)`` per layer."""
    layers = len(states[0].rnn)
    return tuple(
        LSTMState(
            h=np.stack([s.rnn[layer].h for s in states], axis=1),
            c=np.stack([s.rnn[layer].c for s in states], axis=1),
        )
        for layer in range(layers)
    )


def _sequence_outputs(config: ModelConfig, params: Params, x: np.ndarray) -> np.ndarray:
    """Every seed's outputs after every step of ``x (1, time, features)`` from a zero state."""
    return np.asarray(_compiled_sequence(config)(params, jnp.asarray(x)))  # (seeds, 1, time, F)


_SEQUENCE_CACHE: dict[ModelConfig, Any] = {}


def _compiled_sequence(config: ModelConfig):
    if config not in _SEQUENCE_CACHE:

        def outputs(params: Params, x: jax.Array) -> jax.Array:
            y, _ = apply(config, params, init_state(config, x.shape[0]), x)
            return y

        _SEQUENCE_CACHE[config] = jax.jit(jax.vmap(outputs, in_axes=(0, None)))
    return _SEQUENCE_CACHE[config]


def _add_seed_axis(params: Params) -> Params:
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[None], params)


# --------------------------------------------------------------------------- the edge object



def _median_over_seeds(array: Any) -> np.ndarray:
    """The median over the leading seeds axis; with one seed, that seed's values.

    No sort for one seed: the service's hot path forecasts with one.
    """
    array = np.asarray(array)
    return array[0] if array.shape[0] == 1 else np.median(array, axis=0)


class Forecaster:
    """One forecasting model over many series: fit, forecast, observe, save, load, plot.

    Args:
        config: the model and its training (``ForecasterConfig``); or give its fields as
            keyword arguments (``Forecaster(model="stateless", window=12)``), not both.
        quiet: no progress bar while fitting.
        **fields: ``ForecasterConfig`` fields.

    Raises:
        ValueError: ``config`` and fields both given, or an invalid field.

    Example:
        >>> import numpy as np
        >>> fc = Forecaster(model="stateful", units=(4,), epochs=2, seeds=2)
        >>> fc = fc.fit(np.sin(np.arange(40) / 3.0))
        >>> frame = fc.forecast(3)
        >>> list(frame.columns), frame["step"].tolist()
        (['series_id', 'time', 'step', 'forecast'], [1, 2, 3])
    """

    def __init__(
        self, *, config: ForecasterConfig | None = None, quiet: bool = True, **fields: Any
    ) -> None:
        if config is not None and fields:
            raise ValueError(
                f"pass either config= or the config's fields, got both (config and "
                f"{sorted(fields)}); use dataclasses.replace(config, ...) to change a field"
            )
        if config is not None and not isinstance(config, ForecasterConfig):
            raise ValueError(
                f"config must be a ForecasterConfig, got {type(config).__name__}; pass "
                "config=ForecasterConfig(...)"
            )
        self._settings = config if config is not None else ForecasterConfig(**fields)
        self._quiet = bool(quiet)
        self._model: ModelConfig | None = None
        self._params: Params | None = None  # leaves with a leading seeds axis
        self._recipe: Recipe | None = None
        self._scaler: Scaler | None = None  # the scaler of a series first seen after fitting
        self._metrics: dict[str, Any] = {}
        self._store: SeriesStore | None = None
        self._offset = None
        # the readings fitted on (and observed since), for plots: id -> (times ns, values)
        self._history: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}

    # -- construction -----------------------------------------------------------------------
    def _set_model(
        self,
        model: ModelConfig,
        params: Params,
        *,
        recipe: Recipe,
        scaler: Scaler | None,
        metrics: Mapping[str, Any] | None,
        store: SeriesStore | None,
    ) -> None:
        if model.outputs != model.features:
            raise ValueError(
                f"a forecaster feeds its predictions back as readings, so outputs must equal "
                f"features, got outputs={model.outputs} and features={model.features}"
            )
        if len(recipe.columns) != model.features:
            raise ValueError(
                f"recipe names {len(recipe.columns)} columns {list(recipe.columns)}, the model "
                f"reads {model.features} features per step; name one column per feature"
            )
        if scaler is not None and scaler.num_columns != model.features:
            raise ValueError(
                f"the scaler maps {scaler.num_columns} columns, the model reads "
                f"{model.features}; fit the scaler on the model's columns"
            )
        if not model.stateful and model.timesteps != recipe.window:
            raise ValueError(
                f"a window model reads windows of {model.timesteps} steps, the recipe says "
                f"window={recipe.window}; make them equal"
            )
        if self._store is not None and self._store is not store:
            self._store.close()
        self._model = model
        self._params = params
        self._recipe = recipe
        self._scaler = scaler
        self._metrics = dict(metrics or {})
        self._store = store if store is not None else SeriesStore(model=f"unsaved-{uuid.uuid4()}")
        self._offset = None if recipe.freq is None else to_offset(recipe.freq)

    @classmethod
    def from_params(
        cls,
        config: ModelConfig,
        params: Params,
        *,
        recipe: Recipe,
        scaler: Scaler | None = None,
        metrics: Mapping[str, Any] | None = None,
        seeds: int | None = None,
    ) -> "Forecaster":
        """A forecaster around a model already trained (or imported), with no series yet.

        Args:
            config: the model; ``outputs`` must equal ``features`` (it forecasts its readings).
            params: its parameters: one training's, or ``seeds`` trainings' stacked along a
                leading axis.
            recipe: how readings become inputs (``columns`` must match ``features``).
            scaler: the scaler every series starts with, or ``None`` for none.
            metrics: training metrics, saved with the model.
            seeds: ``None`` when ``params`` is one training's; else the size of its leading
                seeds axis.

        Returns:
            The forecaster.

        Raises:
            ValueError: the config, recipe and scaler disagree.
        """
        units = config.hidden if isinstance(config, MLPConfig) else config.units
        settings = ForecasterConfig(
            model=recipe.kind,
            window=recipe.window,
            units=units,
            seeds=1 if seeds is None else seeds,
            scaler="minmax" if scaler is None else scaler.kind,
        )
        forecaster = cls(config=settings)
        if seeds is None:
            params = _add_seed_axis(params)
        forecaster._set_model(
            config, params, recipe=recipe, scaler=scaler, metrics=metrics, store=None
        )
        return forecaster

    def _require_model(self) -> None:
        if self._model is None:
            raise ValueError(
                "this Forecaster is not fitted yet; call fit(data) first, or "
                "Forecaster.load(path) for a saved one"
            )

    # -- views ------------------------------------------------------------------------------
    @property
    def config(self) -> ForecasterConfig:
        """The model and training settings."""
        return self._settings

    @property
    def model_config(self) -> ModelConfig:
        """The network's config."""
        self._require_model()
        return self._model

    @property
    def params(self) -> Params:
        """The parameters, leaves with a leading seeds axis."""
        self._require_model()
        return self._params

    @property
    def seeds(self) -> int:
        """Trainings side by side (forecasts are their median)."""
        self._require_model()
        return int(jax.tree.leaves(self._params)[0].shape[0])

    @property
    def recipe(self) -> Recipe:
        """The data recipe."""
        self._require_model()
        return self._recipe

    @property
    def scaler(self) -> Scaler | None:
        """The scaler a series first seen after fitting starts with (fitted on all series)."""
        return self._scaler

    @property
    def metrics(self) -> dict[str, Any]:
        """Training metrics (a copy)."""
        return dict(self._metrics)

    @property
    def store(self) -> SeriesStore:
        """The state store (in memory until saved; a loaded forecaster's folder store)."""
        self._require_model()
        return self._store

    @property
    def series_ids(self) -> tuple[str, ...]:
        """The series with a state, in the order they were first stored."""
        return () if self._store is None else self._store.series_ids()

    @property
    def windowed(self) -> bool:
        """Whether forecasts read the last ``window`` readings (stateless LSTM, MLP)."""
        self._require_model()
        return not self._model.stateful

    def fresh_state(self) -> SeriesState:
        """The state a new series id starts from (zero recurrent state, nothing seen)."""
        self._require_model()
        return _fresh_state(self._model, self.seeds, self._scaler)

    def series_state(self, series_id: str) -> SeriesState:
        """The state of a series, read from the store now; a fresh one for a new id."""
        known = self.stored_state(series_id)
        return self.fresh_state() if known is None else known

    def stored_state(self, series_id: str) -> SeriesState | None:
        """The state of a series, read from the store now; ``None`` for an unknown id."""
        self._require_model()
        stored = self._store.get(series_id)
        return None if stored is None else self._decode(series_id, stored)

    def _decode(self, series_id: str, stored: StoredState) -> SeriesState:
        return _state_from_arrays(
            self._model,
            self._recipe,
            stored.arrays,
            self.seeds,
            self._settings.scaler,
            f"series {series_id!r}",
        )

    def _encode(self, state: SeriesState) -> StoredState:
        arrays = _state_arrays(self._model, self._recipe, state, self.seeds)
        return StoredState(arrays=arrays, seen=state.seen, last_time=state.last_time)

    # -- validation -------------------------------------------------------------------------
    def check_values(self, series_id: str, values: Any) -> np.ndarray:
        """Readings as ``(readings, columns)`` float64, or a ``ValueError`` saying what is wrong.

        Args:
            series_id: for messages.
            values: ``(readings, columns)``, or ``(readings,)`` for one column.

        Returns:
            The readings, in the original units.

        Raises:
            ValueError: not numbers, wrong column count, no readings, NaN or infinite values.
        """
        self._require_model()
        columns = self._model.features
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"series {series_id!r}: readings must be numbers, got {values!r:.80}; pass "
                f"numbers of shape (readings, {columns})"
            ) from None
        if array.ndim == 1 and columns == 1:
            array = array[:, None]  # (readings,) -> (readings, 1)
        if array.ndim != 2 or array.shape[1] != columns:
            got = array.shape[1] if array.ndim == 2 else f"shape {array.shape}"
            raise ValueError(
                f"series {series_id!r}: each reading needs {columns} value(s) (columns "
                f"{list(self._recipe.columns)}), got {got}; pass values of shape (readings, "
                f"{columns})"
            )
        if array.shape[0] == 0:
            raise ValueError(f"series {series_id!r}: no readings given; pass at least one")
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"series {series_id!r}: reading {first} holds NaN or infinite values "
                f"({array[first].tolist()}); readings must be finite, fill or drop it before "
                "observing"
            )
        return array

    def _check_times(
        self, series_id: str, state: SeriesState, timestamps: Any, count: int
    ) -> np.ndarray | None:
        if timestamps is None:
            if state.last_time is not None:
                last = pd.Timestamp(state.last_time).isoformat()
                raise ValueError(
                    f"series {series_id!r} has timestamps up to {last}; pass timestamps with "
                    "the new readings so that their order can be checked"
                )
            return None
        stamps = parse_timestamps(series_id, timestamps)
        index = pd.DatetimeIndex(stamps)
        if len(index) != count:
            raise ValueError(
                f"series {series_id!r}: {len(index)} timestamps for {count} readings; pass "
                "one timestamp per reading"
            )
        if state.last_time is not None and stamps[0] <= state.last_time:
            raise ValueError(
                f"series {series_id!r}: reading at {index[0].isoformat()} is out of time order: "
                "the series already has readings up to "
                f"{pd.Timestamp(state.last_time).isoformat()}; "
                "send only newer readings"
            )
        steps = np.diff(stamps)
        if (steps <= 0).any():
            at = int(np.argmax(steps <= 0)) + 1
            raise ValueError(
                f"series {series_id!r}: timestamps are not strictly increasing at reading {at} "
                f"({index[at - 1].isoformat()} then {index[at].isoformat()}); sort them and "
                "drop duplicates"
            )
        if self._offset is not None:
            start = index[0] if state.last_time is None else pd.Timestamp(state.last_time)
            grid = pd.date_range(start, periods=count + 1, freq=self._offset)
            grid = grid[1:] if state.last_time is not None else grid[:-1]
            off = grid.as_unit("ns").asi8 != stamps
            if off.any():
                at = int(np.argmax(off))
                raise ValueError(
                    f"series {series_id!r}: reading {at} has timestamp {index[at].isoformat()}, "
                    f"expected {grid[at].isoformat()} (frequency {self._recipe.freq}): a gap "
                    "or an off-grid reading; send the missing readings (filled) in order"
                )
        return stamps

    def _readings(self, series_id: str, new_data: Any, timestamps: Any) -> tuple[Any, Any]:
        """``new_data`` (DataFrame, Series or array) as ``(values, timestamps)``."""
        if isinstance(new_data, pd.Series):
            if isinstance(new_data.index, pd.DatetimeIndex) and timestamps is None:
                timestamps = new_data.index
            return new_data.to_numpy(), timestamps
        if not isinstance(new_data, pd.DataFrame):
            return new_data, timestamps
        frame = new_data
        time_col = self._recipe.time_col
        if isinstance(frame.index, pd.DatetimeIndex):
            if timestamps is None:
                timestamps = frame.index
        else:
            candidates = [c for c in (time_col, "time", "ds") if c is not None and c in frame]
            if not candidates:
                candidates = [
                    c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                ][:1]
            if candidates:
                if timestamps is None:
                    timestamps = frame[candidates[0]].astype(str).tolist()
                frame = frame.drop(columns=candidates[0])
        columns = list(self._recipe.columns)
        names = [str(c) for c in frame.columns]
        frame.columns = names
        if not set(columns) <= set(names):
            if len(columns) == 1:
                chosen = [c for c in (series_id, "value", "y") if c in names]
                columns = chosen[:1] or (names if len(names) == 1 else [])
            if len(columns) != len(self._recipe.columns) or not set(columns) <= set(names):
                raise ValueError(
                    f"series {series_id!r}: cannot tell which column(s) of the DataFrame hold "
                    f"the readings (columns: {names}); the model reads "
                    f"{list(self._recipe.columns)}, name the columns so"
                )
        return frame[columns].to_numpy(), timestamps

    # -- the pure step ----------------------------------------------------------------------
    def advance(
        self,
        series_id: str,
        values: Any,
        timestamps: Sequence[Any] | None = None,
        *,
        state: SeriesState | None = None,
    ) -> SeriesState:
        """The state after reading ``values``, without storing it (validates first).

        Args:
            series_id: the series.
            values: ``(readings, columns)`` or ``(readings,)`` for one column, original units.
            timestamps: one per reading (ISO strings, datetimes), or ``None``.
            state: the state to advance; ``None`` reads the series' stored state.

        Returns:
            The new ``SeriesState``; ``commit`` stores it.

        Raises:
            ValueError: a bad id, wrong column count, NaN or infinite values, timestamps out
                of order, with gaps, or missing where the series has them. Nothing changes.
        """
        states = None if state is None else {series_id: state}
        result = self._advance_many({series_id: values}, {series_id: timestamps}, states)
        return result[series_id][0]

    def _advance_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Any] | None,
        states: Mapping[str, SeriesState] | None = None,
    ) -> dict[str, tuple[SeriesState, np.ndarray, np.ndarray | None]]:
        """Validate and advance several series: id -> (new state, readings, timestamps ns)."""
        self._require_model()
        timestamps = timestamps or {}
        checked = {}
        for series_id, values in observations.items():
            check_series_id(series_id)
            state = states[series_id] if states is not None else self.series_state(series_id)
            array = self.check_values(series_id, values)
            stamps = self._check_times(series_id, state, timestamps.get(series_id), len(array))
            with np.errstate(over="ignore"):
                scaled = (array if state.scaler is None else state.scaler.transform(array)).astype(
                    np.float32
                )
            overflow = ~np.isfinite(scaled).all(axis=1)
            if overflow.any():
                first = int(np.argmax(overflow))
                raise ValueError(
                    f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
                    "the float32 range the model computes in, once scaled; check its units"
                )
            checked[series_id] = (state, scaled, stamps, array)
        advanced = self._read_windowed(checked) if self.windowed else self._read_stateful(checked)
        return {
            series_id: (advanced[series_id], checked[series_id][3], checked[series_id][2])
            for series_id in checked
        }

    def _read_stateful(self, checked: dict) -> dict[str, SeriesState]:
        out = {}
        by_length: dict[int, list[str]] = {}
        for series_id, (_, scaled, _, _) in checked.items():
            by_length.setdefault(len(scaled), []).append(series_id)
        for length, ids in by_length.items():
            before = _stack_rnn([checked[i][0] for i in ids])  # (seeds, series, units)
            x = np.stack([checked[i][1] for i in ids])  # (series, readings, features)
            y, after = read(self._model, self._params, before, x, seeds=True)
            y = np.asarray(y)  # (seeds, series, outputs)
            after = [LSTMState(h=np.asarray(s.h), c=np.asarray(s.c)) for s in after]
            for row, series_id in enumerate(ids):
                state, _, stamps, _ = checked[series_id]
                out[series_id] = dataclasses.replace(
                    state,
                    rnn=tuple(LSTMState(h=s.h[:, row], c=s.c[:, row]) for s in after),
                    prediction=y[:, row],
                    last_time=state.last_time if stamps is None else int(stamps[-1]),
                    seen=state.seen + length,
                )
        return out

    def _read_windowed(self, checked: dict) -> dict[str, SeriesState]:
        window = self._recipe.window
        recents = {
            series_id: np.concatenate([state.recent, scaled])[-window:]
            for series_id, (state, scaled, _, _) in checked.items()
        }
        ready = [series_id for series_id, recent in recents.items() if len(recent) == window]
        predictions = {}
        if ready:
            x = np.stack([recents[i] for i in ready])  # (series, window, features)
            y = np.asarray(read(self._model, self._params, (), x, seeds=True)[0])
            predictions = {series_id: y[:, row] for row, series_id in enumerate(ready)}
        out = {}
        for series_id, (state, scaled, stamps, _) in checked.items():
            out[series_id] = dataclasses.replace(
                state,
                recent=recents[series_id],
                prediction=predictions.get(series_id),
                last_time=state.last_time if stamps is None else int(stamps[-1]),
                seen=state.seen + len(scaled),
            )
        return out

    def commit(
        self,
        series_id: str,
        state: SeriesState,
        *,
        readings: np.ndarray | None = None,
        times: Sequence[int] | None = None,
    ) -> None:
        """Store a state from ``advance``, and log the readings that led to it (one transaction).

        Args:
            series_id: the series.
            state: its new state.
            readings: ``(readings, columns)`` float64, the readings ``state`` read last (their
                sequence numbers end at ``state.seen - 1``), or ``None`` to log none.
            times: their timestamps in nanoseconds, or ``None``.
        """
        check_series_id(series_id)
        first = None if readings is None else state.seen - len(readings)
        self._store.put(
            series_id, self._encode(state), first_seq=first, times=times, readings=readings
        )

    def warm_start(
        self,
        histories: Mapping[str, Any],
        timestamps: Mapping[str, Any] | None = None,
        *,
        scalers: Mapping[str, Scaler | None] | None = None,
    ) -> None:
        """Read whole histories into fresh states and store them, without logging the readings.

        What ``fit`` does after training: every series is left at the end of its data, where
        ``observe`` continues. A stored state of the same id is replaced.

        Args:
            histories: series id -> readings, oldest first.
            timestamps: series id -> one timestamp per reading; ``None`` for none.
            scalers: series id -> the series' own scaler; missing ids get the default.

        Raises:
            ValueError: as ``advance``; nothing is stored.
        """
        self._require_model()
        scalers = scalers or {}
        fresh = {
            series_id: dataclasses.replace(
                self.fresh_state(), scaler=scalers.get(series_id, self._scaler)
            )
            for series_id in histories
        }
        advanced = self._advance_many(histories, timestamps, fresh)
        self._store.put_many({i: self._encode(s) for i, (s, _, _) in advanced.items()})

    # -- observe and forecast ---------------------------------------------------------------
    def observe(
        self,
        series_id: str,
        new_data: Any,
        timestamps: Sequence[Any] | None = None,
        *,
        horizon: int = 1,
    ) -> Forecast:
        """Advance a series through new readings, store its state, and forecast what follows.

        The series' state is read from the store, advanced, and written back with the
        readings' idempotency record in one transaction (a loaded forecaster writes to its
        folder's store, as ``lstmlab observe`` and the service do).

        Args:
            series_id: the series; a new id starts from a fresh state.
            new_data: the new readings, oldest first, in the original units: a DataFrame
                (a DatetimeIndex or a time column, and the value column(s)), a Series with a
                DatetimeIndex, or an array ``(readings, columns)`` (``(readings,)`` for one
                column).
            timestamps: one per reading, when ``new_data`` carries none; ``None`` is allowed
                only for series without timestamps.
            horizon: steps to forecast.

        Returns:
            The ``Forecast`` after the last reading (``to_dict`` for JSON).

        Raises:
            ValueError: see ``advance``; on error the series' state is unchanged.
        """
        return self.observe_many({series_id: new_data}, {series_id: timestamps}, horizon=horizon)[
            series_id
        ]

    def observe_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Sequence[Any] | None] | None = None,
        *,
        horizon: int = 1,
    ) -> dict[str, Forecast]:
        """``observe`` for many series at once, batched (all or nothing, one transaction).

        Args:
            observations: series id -> new readings (as ``observe`` takes them).
            timestamps: series id -> timestamps, or ``None``.
            horizon: steps to forecast.

        Returns:
            Series id -> ``Forecast``.
        """
        self._require_model()
        check_int_range("horizon", horizon, 1, MAX_HORIZON)
        timestamps = dict(timestamps or {})
        values = {}
        for series_id, new_data in observations.items():
            check_series_id(series_id)
            values[series_id], timestamps[series_id] = self._readings(
                series_id, new_data, timestamps.get(series_id)
            )
        with self._store.transaction():  # read, advance and write under the write lock
            advanced = self._advance_many(values, timestamps)
            for series_id, (state, readings, stamps) in advanced.items():
                self.commit(series_id, state, readings=readings, times=stamps)
        for series_id, (_, readings, stamps) in advanced.items():
            if series_id in self._history:
                old_times, old_values = self._history[series_id]
                joined = (
                    None
                    if old_times is None or stamps is None
                    else np.concatenate([old_times, stamps])
                )
                self._history[series_id] = (joined, np.concatenate([old_values, readings]))
        forecasts = self._forecasts({i: s for i, (s, _, _) in advanced.items()}, horizon)
        return forecasts

    def _forecasts(self, states: Mapping[str, SeriesState], horizon: int) -> dict[str, Forecast]:
        """Every series' forecast from its state: one rollout for all of them."""
        ready = [i for i, s in states.items() if s.prediction is not None]
        scaled = self._rollout([states[i] for i in ready], horizon) if ready else None
        out = {}
        for series_id, state in states.items():
            if state.prediction is None:
                needed = max(self._recipe.window - len(state.recent), 1) if self.windowed else 1
                out[series_id] = Forecast(
                    series_id=series_id,
                    values=None,
                    timestamps=None,
                    seen=state.seen,
                    needed=needed,
                )
                continue
            rows = scaled[ready.index(series_id)]  # (horizon, columns)
            values = (
                rows.astype(np.float64)
                if state.scaler is None
                else state.scaler.inverse_transform(rows)
            )
            stamps = None
            if state.last_time is not None and self._offset is not None:
                grid = pd.date_range(
                    pd.Timestamp(state.last_time), periods=horizon + 1, freq=self._offset
                )[1:]
                stamps = tuple(t.isoformat() for t in grid)
            out[series_id] = Forecast(
                series_id=series_id, values=values, timestamps=stamps, seen=state.seen, needed=0
            )
        return out

    def _rollout(self, states: Sequence[SeriesState], horizon: int) -> np.ndarray:
        """``(series, horizon, columns)`` scaled forecasts: the median over seeds."""
        columns = self._model.features
        output = np.stack([s.prediction for s in states], axis=1)  # (seeds, series, columns)
        if horizon == 1:  # the next step is the prediction already stored: no device call
            return _median_over_seeds(output)[:, None, :]  # (series, 1, columns)
        if self.windowed:
            x = np.stack([s.recent for s in states])  # (series, window, columns)
            rnn: Any = ()
        else:
            # a stream reads one reading per step; the last one is not needed (the output
            # after it is given), only its shape
            x = np.zeros((len(states), 1, columns), np.float32)
            rnn = _stack_rnn(states)
        steps = rollout(
            self._model, self._params, rnn, x, horizon=horizon, output=output, seeds=True
        )
        return _median_over_seeds(np.asarray(steps))  # (series, horizon, columns)

    def forecast_state(self, series_id: str, state: SeriesState, horizon: int = 1) -> Forecast:
        """Forecast ``horizon`` steps from ``state`` (``state`` is not changed).

        Args:
            series_id: the series (for the result).
            state: its state.
            horizon: steps.

        Returns:
            The ``Forecast``.
        """
        self._require_model()
        horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
        return self._forecasts({series_id: state}, horizon)[series_id]

    def series_forecast(self, series_id: str, horizon: int = 1) -> Forecast:
        """Forecast a known series from its stored state (the state does not change).

        Args:
            series_id: the series.
            horizon: steps to forecast, fed back recursively.

        Returns:
            The ``Forecast``.

        Raises:
            KeyError: unknown series id.
        """
        self._require_model()
        check_int_range("horizon", horizon, 1, MAX_HORIZON)
        stored = self._store.get(series_id)
        if stored is None:
            raise KeyError(
                f"unknown series {series_id!r}; observe readings for it first (known: "
                f"{len(self._store)} series)"
            )
        return self.forecast_state(series_id, self._decode(series_id, stored), horizon)

    def forecast(self, horizon: int = 1, series: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Forecast ``horizon`` steps of every series (or of ``series``), as a tidy DataFrame.

        Args:
            horizon: steps ahead.
            series: one series id, several, or ``None`` for all.

        Returns:
            One row per series and step: ``series_id``, ``time`` (the timestamps continuing
            each series at its frequency; the reading's position for series without
            timestamps), ``step`` (1 to ``horizon``) and ``forecast`` (the median over
            seeds). With several value columns, one row per column as well, named in a
            ``target`` column. Series that cannot forecast yet (a window model that has seen
            fewer than ``window`` readings) are left out.

        Raises:
            KeyError: an unknown series id.
            ValueError: a bad horizon, or the forecaster is not fitted.
        """
        self._require_model()
        horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
        ids = (
            list(self.series_ids)
            if series is None
            else ([series] if isinstance(series, str) else list(series))
        )
        states = {}
        for series_id in ids:
            stored = self._store.get(series_id)
            if stored is None:
                raise KeyError(
                    f"unknown series {series_id!r}; the forecaster knows {len(self._store)} "
                    f"series (e.g. {list(self.series_ids[:3])}); fit or observe it first"
                )
            states[series_id] = self._decode(series_id, stored)
        forecasts = self._forecasts(states, horizon)
        columns = self._recipe.columns
        frames = []
        for series_id, forecast in forecasts.items():
            if forecast.values is None:
                continue
            steps = np.arange(1, horizon + 1)
            if forecast.timestamps is not None:
                times: Any = pd.DatetimeIndex(forecast.timestamps)
            else:
                times = forecast.seen + steps - 1  # the position of the forecast reading
            for j, column in enumerate(columns):
                frame = pd.DataFrame(
                    {
                        "series_id": series_id,
                        "time": times,
                        "step": steps,
                        "forecast": forecast.values[:, j],
                    }
                )
                if len(columns) > 1:
                    frame.insert(3, "target", column)
                frames.append(frame)
        if not frames:
            names = ["series_id", "time", "step"] + (["target"] if len(columns) > 1 else [])
            return pd.DataFrame(columns=[*names, "forecast"])
        out = pd.concat(frames, ignore_index=True)
        if len(columns) > 1:
            out = out.sort_values(["series_id", "step", "target"], kind="stable")
            out = out.reset_index(drop=True)
        return out

    def replay(self, values: Any, series_id: str | None = None) -> np.ndarray:
        """One-step predictions after every reading of a whole series, from a fresh state.

        The offline reference for streaming: computed at once (one call over the whole
        series for stateful models, all windows in one batch for window models).

        Args:
            values: ``(time, columns)`` or ``(time,)``, original units.
            series_id: whose scaler to use; ``None`` (or an unknown id) uses the default.

        Returns:
            ``(time, columns)`` float64, the median over seeds: row ``t`` forecasts reading
            ``t + 1``; NaN where a window model has not yet seen ``window`` readings.
        """
        self._require_model()
        array = self.check_values("replay", values)
        scaler = self._scaler
        if series_id is not None:
            stored = self._store.get(series_id)
            if stored is not None:
                scaler = self._decode(series_id, stored).scaler
        scaled = (array if scaler is None else scaler.transform(array)).astype(np.float32)
        out = np.full(scaled.shape, np.nan, np.float32)
        if self.windowed:
            window = self._recipe.window
            if len(scaled) >= window:
                x = make_windows(scaled, length=window, offset=0).x  # (n, window, columns)
                y = np.asarray(read(self._model, self._params, (), x, seeds=True)[0])
                out[window - 1 :] = _median_over_seeds(y)
        elif getattr(self._model, "return_sequences", False):
            y = _sequence_outputs(self._model, self._params, scaled[None])  # (seeds, 1, T, C)
            out[:] = _median_over_seeds(y[:, 0])
        else:
            state = _stack_rnn([self.fresh_state()])
            for t in range(len(scaled)):
                x = scaled[None, t : t + 1]  # (1, 1, columns)
                y, state = read(self._model, self._params, state, x, seeds=True)
                out[t] = _median_over_seeds(np.asarray(y)[:, 0])
        if scaler is None:
            return out.astype(np.float64)
        return scaler.inverse_transform(out)

    # -- training ---------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        *,
        time_col: str | None = None,
        target: str | Sequence[str] | None = None,
        freq: str | None = None,
        id_col: str | None = None,
    ) -> "Forecaster":
        """Train one model over all series, then leave each series at the end of its data.

        Each series gets its own scaler, fitted on its own values. Stateful models train on
        the stream layout (``make_series_streams``: each series ``batch_size`` contiguous
        streams, next-step targets at every step); window models on the sliding windows of
        all series, shuffled. The ``seeds`` trainings run side by side in the one training
        driver; forecasts are their median. Any series stored before is dropped (a new model
        starts a new, in-memory store; ``save`` writes it into a model folder).

        Args:
            data: a wide DataFrame (a column per series; a DatetimeIndex or ``time_col``), a
                long DataFrame (``unique_id, ds, y`` or ``series_id, time, value`` are
                recognised; else pass ``id_col``, ``time_col`` and ``target``), a Series, or a
                NumPy array (``(time,)`` one series, ``(time, series)`` several; no
                timestamps).
            time_col: the time column (else the DatetimeIndex).
            target: the value column(s): of a long frame, or the series to take from a wide
                one (default: every column).
            freq: the readings' frequency (``"MS"``, ``"15min"``); inferred when left out.
            id_col: the series id column of a long DataFrame.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: data of an unknown form, non-numeric value columns, NaN inside a
                series, a constant series, timestamps whose frequency cannot be inferred or
                with gaps, or series too short for the window.
        """
        from lstmlab.runtime import epoch_progress  # the progress bar (rich) on demand

        settings = self._settings
        parsed = _parse_data(data, time_col, target, freq, id_col)
        scalers = {}
        for series_id, values in parsed.values.items():
            try:
                scalers[series_id] = fit_scaler(values, settings.scaler, parsed.columns)
            except ValueError as error:
                raise ValueError(f"series {series_id!r}: {error}") from None
        pooled = np.concatenate(list(parsed.values.values()))
        default_scaler = fit_scaler(pooled, settings.scaler, parsed.columns)
        scaled = [
            scalers[i].transform(values).astype(np.float32) for i, values in parsed.values.items()
        ]
        model = settings.model_config(len(parsed.columns))
        train_config = TrainConfig(
            epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            shuffle=not model.stateful,
            seed=settings.seed,
        )
        if model.stateful:
            batch_size = settings.resolved_batch_size * len(scaled)
            layout = make_series_streams(
                scaled, batch_size=batch_size, chunk=settings.window, trim="start"
            )
        else:
            windows = [make_windows(s, length=settings.window) for s in scaled]
            x = np.concatenate([w.x for w in windows])  # (samples, window, columns)
            y = np.concatenate([w.y for w in windows])  # (samples, columns)
            batch_size = min(settings.resolved_batch_size, len(x))
            layout = make_sample_batches(x, y, batch_size=batch_size, trim="start")
        seeds = [settings.seed + i for i in range(settings.seeds)]
        states = init_train_states(
            model,
            train_config,
            seeds,
            batch_size,
            keys=[jax.random.key(seed) for seed in seeds],
        )
        started = time.perf_counter()
        with epoch_progress(settings.epochs, "fit", quiet=self._quiet) as progress:
            trained, log = fit(
                model,
                train_config,
                states,
                layout.x_batches,
                layout.y_batches,
                on_epoch=None
                if self._quiet
                else lambda _, losses, __: progress.advance(float(np.mean(losses))),
            )
        seconds = time.perf_counter() - started
        recipe = Recipe(
            kind=settings.model,
            window=settings.window,
            columns=parsed.columns,
            time_col=parsed.time_col,
            freq=parsed.freq,
        )
        losses = np.asarray(log.loss)  # (epochs, seeds)
        metrics = {
            "loss": [float(v) for v in losses.mean(axis=1)],
            "final_loss": float(losses[-1].mean()) if len(losses) else None,
            "final_loss_per_seed": [float(v) for v in losses[-1]] if len(losses) else [],
            "epochs": settings.epochs,
            "updates": int(np.asarray(log.updates)[0]),
            "batch_size": batch_size,
            "train_seconds": seconds,
            "trim": str(layout.trim),
            "series": {i: int(len(v)) for i, v in parsed.values.items()},
            "config": settings.to_dict(),
        }
        self._set_model(
            model,
            trained.params,
            recipe=recipe,
            scaler=default_scaler,
            metrics=metrics,
            store=None,
        )
        stamps = {i: t for i, t in parsed.times.items() if t is not None}
        self.warm_start(parsed.values, stamps, scalers=scalers)
        self._history = {
            i: (None if t is None else pd.DatetimeIndex(t).as_unit("ns").asi8, parsed.values[i])
            for i, t in parsed.times.items()
        }
        one_step = {}
        for series_id, values in parsed.values.items():
            predicted = self.replay(values, series_id)[:-1]  # row t forecasts reading t + 1
            error = predicted - values[1:]
            valid = np.isfinite(error).all(axis=1)
            one_step[series_id] = float(np.sqrt(np.mean(np.square(error[valid]))))
        self._metrics["one_step_rmse"] = one_step
        return self

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the model into a folder, atomically, and every series' state into its store.

        The model (config, weights, scaler, recipe, metrics) is written as ``lstmlab
        .model_folder`` describes: old or new, never broken. The states go into the folder's
        state store (``DIR/series.<fingerprint16>.sqlite``) with their observation log;
        series already stored there (by the service, or ``lstmlab observe``) stay. A
        forecaster loaded from ``path`` has written every observation there already.

        Args:
            path: the model folder; created if needed.

        Returns:
            The folder as a ``Path``.
        """
        self._require_model()
        seeds = self.seeds
        params = self._params if seeds > 1 else jax.tree.map(lambda leaf: leaf[0], self._params)
        saved = SavedModel(
            config=self._model,
            params=params,
            recipe={**self._recipe.to_dict(), "config": self._settings.to_dict()},
            scaler=None if self._scaler is None else self._scaler.to_dict(),
            metrics=self._metrics,
            states={},
            states_meta={"series": []},
            store=self._store,
            seeds=seeds if seeds > 1 else None,
        )
        return save_model(path, saved)

    @classmethod
    def load(
        cls, path: str | Path, *, store: SeriesStore | None = None, quiet: bool = True
    ) -> "Forecaster":
        """Load a folder written by ``save`` (checksums verified); states load lazily.

        Args:
            path: the model folder.
            store: the state store to use instead of the folder's own (it must belong to
                this model); ``None`` opens the folder's.
            quiet: no progress bar when fitted again.

        Returns:
            The forecaster; ``observe`` writes to its store. ``close`` it when done (or use
            it as a context manager).

        Raises:
            ModelFolderError: the folder cannot be read.
            StoreError: ``store`` belongs to another model.
        """
        from lstmlab.live.state_store import StoreError
        from lstmlab.model_folder import model_fingerprint

        saved = load_model(path, states=False)
        fingerprint = model_fingerprint(path)
        if store is not None and store.model != fingerprint:
            raise StoreError(
                f"state store {store.path} belongs to another model (fingerprint "
                f"{store.model[:16]}..., this model's is {fingerprint[:16]}...); pass its own"
            )
        recipe = Recipe.from_dict(saved.recipe)
        scaler = None if saved.scaler is None else Scaler.from_dict(saved.scaler)
        if "config" in saved.recipe:
            settings = ForecasterConfig(**saved.recipe["config"])
        else:
            config = saved.config
            settings = ForecasterConfig(
                model=recipe.kind,
                window=recipe.window,
                units=config.hidden if isinstance(config, MLPConfig) else config.units,
                seeds=saved.seeds or 1,
                scaler="minmax" if scaler is None else scaler.kind,
            )
        forecaster = cls(config=settings, quiet=quiet)
        params = saved.params if saved.seeds else _add_seed_axis(saved.params)
        forecaster._set_model(
            saved.config,
            params,
            recipe=recipe,
            scaler=scaler,
            metrics=saved.metrics,
            store=store if store is not None else open_store(path),
        )
        return forecaster

    def close(self) -> None:
        """Close the state store (a loaded forecaster holds its folder's store open)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Forecaster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plots ------------------------------------------------------------------------------
    def plot(
        self,
        series: str | Sequence[str] | None = None,
        *,
        horizon: int = 12,
        history: int = 120,
    ):
        """A matplotlib Figure of each series' recent history and its forecast.

        Built with ``matplotlib.figure.Figure`` (not ``pyplot``): the global backend of a
        notebook or script is never touched; save it with ``fig.savefig(...)``, or show it
        in a notebook as the cell's value.

        Args:
            series: one id, several, or ``None`` for all (at most the first 6).
            horizon: steps to forecast.
            history: readings of history to show before the forecast (those fitted on and
                observed since, or the observations a loaded forecaster's store logged).

        Returns:
            The ``matplotlib.figure.Figure``, one row of axes per series.
        """
        from matplotlib.figure import Figure

        self._require_model()
        check_positive_int("history", history)
        ids = (
            list(self.series_ids)[:6]
            if series is None
            else ([series] if isinstance(series, str) else list(series))
        )
        frame = self.forecast(horizon, series=ids)
        figure = Figure(figsize=(9, 2.6 * max(len(ids), 1)), layout="constrained")
        axes = figure.subplots(max(len(ids), 1), 1, squeeze=False)[:, 0]
        for ax, series_id in zip(axes, ids, strict=False):
            times, values = self._plot_history(series_id)
            if values is not None and len(values):
                values, times = values[-history:], None if times is None else times[-history:]
                x = (
                    pd.DatetimeIndex(times)
                    if times is not None
                    else np.arange(
                        self.series_state(series_id).seen - len(values),
                        self.series_state(series_id).seen,
                    )
                )
                for j, column in enumerate(self._recipe.columns):
                    label = "history" if len(self._recipe.columns) == 1 else f"{column} history"
                    ax.plot(x, values[:, j], color=f"C{j}", label=label)
            rows = frame[frame["series_id"] == series_id]
            for j, column in enumerate(self._recipe.columns):
                part = rows if "target" not in rows else rows[rows["target"] == column]
                label = "forecast" if len(self._recipe.columns) == 1 else f"{column} forecast"
                ax.plot(part["time"], part["forecast"], "--", color=f"C{j}", label=label)
            ax.set_title(f"{series_id}: {self._settings.model} LSTM, median of {self.seeds}")
            ax.legend(loc="upper left")
        return figure

    def _plot_history(self, series_id: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        if series_id in self._history:
            return self._history[series_id]
        logged = self._store.observations(series_id)
        if not logged:
            return None, None
        times = [t for _, t, _ in logged]
        values = np.stack([reading for _, _, reading in logged])
        return (None if None in times else np.asarray(times, np.int64)), values
