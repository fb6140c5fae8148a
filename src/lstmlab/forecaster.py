"""Models that live: a ``Forecaster`` keeps each series' state between calls.

A meter sends a reading every 15 minutes; ``Forecaster.observe("meter-7", [reading],
timestamps=[t])`` advances that series' state through the new reading and returns the
next-step forecast, without re-reading the history. The state is per series (not per
training batch slot), so a stateful model trained with batch size B serves any number of
series, and ``save``/``load`` keep it with the model (see ``lstmlab.model_folder``).

What a series' state holds (``SeriesState``):

- stateful models (``LSTMConfig(stateful=True)``): one ``LSTMState`` per layer with batch 1,
  the state reached after reading the whole series from a zero state;
- window models (stateless LSTM, MLP): the last ``window`` readings;
- both: the next-step prediction after the last reading, the last timestamp, the count of
  readings seen.

Exactness: observing a series in pieces of any sizes gives the same predictions as observing
it at once (to float32 rounding; each piece is run in power-of-two chunks so that only a
handful of shapes are ever compiled). Multi-step forecasts feed the predictions back through
the model from a copy of the state; the stored state changes only with real readings.

All numerics go through ``lstmlab.models.apply``, compiled per shape.
"""

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmlab.checks import check_positive_int
from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    Params,
    apply,
    init_params,
    init_state,
)
from lstmlab.core.train import TrainConfig, fit, init_train_state
from lstmlab.data.layouts import make_series_streams, make_windows
from lstmlab.data.scaling import Scaler, fit_scaler
from lstmlab.model_folder import SavedModel, load_model, save_model

MODEL_KINDS = ("stateful", "stateless", "stacked", "mlp")


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
        if self.model not in MODEL_KINDS:
            raise ValueError(
                f"model must be one of {MODEL_KINDS}, got {self.model!r}; pass e.g. "
                "model='stateful'"
            )
        check_positive_int("window", self.window)
        for index, units in enumerate(self.units):
            check_positive_int(f"units[{index}]", units)
        check_positive_int("epochs", self.epochs)
        check_positive_int("seeds", self.seeds)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}; pass e.g. 0")
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise ValueError(
                f"learning_rate must be a number > 0, got {self.learning_rate!r}; pass e.g. 3e-3"
            )
        if self.scaler not in ("minmax", "standard"):
            raise ValueError(
                f"scaler must be 'minmax' or 'standard', got {self.scaler!r}; pass one of those"
            )

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
_NO_TIME = np.iinfo(np.int64).min  # "no timestamp yet" in the int64 arrays of a states file
MAX_HORIZON = 10_000


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
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive integer, got {self.window!r}")
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
        """Rebuild from ``to_dict`` output."""
        return cls(**dict(data))


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SeriesState:
    """What a series carries between calls (NumPy arrays, read-only by convention).

    Attributes:
        rnn: one ``LSTMState`` per layer with ``(1, units)`` float32 arrays; ``()`` for window
            models.
        recent: ``(k, columns)`` float32, the last ``k <= window`` scaled readings (window
            models; ``(0, columns)`` for stateful models).
        prediction: ``(columns,)`` float32, the scaled next-step prediction after the last
            reading, or ``None`` before the model can forecast.
        last_time: the last reading's timestamp in nanoseconds since the epoch, or ``None``.
        seen: readings observed so far.
    """

    rnn: tuple[LSTMState, ...]
    recent: np.ndarray
    prediction: np.ndarray | None
    last_time: int | None
    seen: int


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Forecast:
    """A forecast for one series.

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


# --------------------------------------------------------------------------- compiled core


def _pack_state(rnn: tuple[LSTMState, ...]) -> np.ndarray:
    """``(rows, 2 * sum(units))``: ``[h_0, c_0, h_1, c_1, ...]`` side by side (one transfer)."""
    return np.concatenate([array for layer in rnn for array in (layer.h, layer.c)], axis=1)


def _unpack_state(config: ModelConfig, packed: Any) -> tuple[LSTMState, ...]:
    states, start = [], 0
    for units in config.units:
        h = packed[:, start : start + units]  # (rows, units)
        c = packed[:, start + units : start + 2 * units]
        states.append(LSTMState(h=h, c=c))
        start += 2 * units
    return tuple(states)


@functools.partial(jax.jit, static_argnums=0)
def _advance(config: ModelConfig, params: Params, packed: jax.Array, x: jax.Array) -> jax.Array:
    """Stateful step from a packed state; returns ``[last output, packed new state]``.

    Args:
        config: the model (static).
        params: its parameters.
        packed: ``(batch, 2 * sum(units))`` from ``_pack_state``.
        x: ``(batch, n, features)``.

    Returns:
        ``(batch, outputs + 2 * sum(units))``: the output after the last step, then the new
        state packed as the input was; one array, so one device-to-host copy per call.
    """
    y, rnn = apply(config, params, _unpack_state(config, packed), x)
    last = y[:, -1, :] if y.ndim == 3 else y  # (batch, outputs)
    return jnp.concatenate([last, *(array for layer in rnn for array in (layer.h, layer.c))], 1)


def _run_stateful(
    config: ModelConfig, params: Params, packed: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``x (batch, n, features)`` in power-of-two pieces; ``(last output, packed state)``."""
    start = 0
    for piece in _power_of_two_pieces(x.shape[1]):
        packed_out = _advance(config, params, packed, x[:, start : start + piece])
        packed = packed_out[:, config.outputs :]  # stays on the device between pieces
        start += piece
    result = np.asarray(packed_out)
    return result[:, : config.outputs], result[:, config.outputs :]


@functools.partial(jax.jit, static_argnums=0)
def _read_windows(config: ModelConfig, params: Params, x: jax.Array):
    """Window model: ``x (batch, window, features)`` from zero state; ``(batch, outputs)``."""
    y, _ = apply(config, params, init_state(config, x.shape[0]), x)
    return y[:, -1, :] if y.ndim == 3 else y


@functools.partial(jax.jit, static_argnums=0)
def _read_sequence(config: ModelConfig, params: Params, x: jax.Array):
    """Stateful model with ``return_sequences``: outputs after every step from zero state."""
    y, _ = apply(config, params, init_state(config, x.shape[0]), x)
    return y  # (batch, time, outputs)


def _power_of_two_pieces(n: int) -> list[int]:
    """``n`` as descending powers of two: 13 -> [8, 4, 1] (bounds the compiled shapes)."""
    return [1 << bit for bit in range(n.bit_length() - 1, -1, -1) if n >> bit & 1]


def _padded_rows(batch: int) -> int:
    return 1 << (batch - 1).bit_length()


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    if array.shape[0] == rows:
        return array
    pad = np.zeros((rows - array.shape[0], *array.shape[1:]), array.dtype)
    return np.concatenate([array, pad])


# --------------------------------------------------------------------------- the edge object


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


def _is_windowed(config: ModelConfig) -> bool:
    return not config.stateful


class Forecaster:
    """A trained model, its scaler and recipe, and one state per series.

    Args:
        config: the model; ``outputs`` must equal ``features`` (it forecasts its readings).
        params: its parameters.
        recipe: how readings become inputs (``columns`` must match ``features``).
        scaler: maps readings to model units, or ``None`` for none.
        metrics: training metrics, saved with the model.
        states: initial per-series states.

    Raises:
        ValueError: the config, recipe and scaler disagree.

    Example:
        >>> from lstmlab.core.model import LSTMConfig, init_params
        >>> config = LSTMConfig(units=(4,), return_sequences=True)
        >>> model = Forecaster(config, init_params(config, 0), recipe=Recipe(window=4))
        >>> first = model.observe("a", [0.1, 0.2])
        >>> second = model.observe("a", [0.3])
        >>> whole = model.replay([0.1, 0.2, 0.3])
        >>> bool(np.allclose(second.values[0], whole[-1], atol=1e-6))
        True
    """

    def __init__(
        self,
        config: ModelConfig,
        params: Params,
        *,
        recipe: Recipe,
        scaler: Scaler | None = None,
        metrics: Mapping[str, Any] | None = None,
        states: Mapping[str, SeriesState] | None = None,
    ) -> None:
        if config.outputs != config.features:
            raise ValueError(
                f"a forecaster feeds its predictions back as readings, so outputs must equal "
                f"features, got outputs={config.outputs} and features={config.features}"
            )
        if len(recipe.columns) != config.features:
            raise ValueError(
                f"recipe names {len(recipe.columns)} columns {list(recipe.columns)}, the model "
                f"reads {config.features} features per step; name one column per feature"
            )
        if scaler is not None and scaler.num_columns != config.features:
            raise ValueError(
                f"the scaler maps {scaler.num_columns} columns, the model reads "
                f"{config.features}; fit the scaler on the model's columns"
            )
        if _is_windowed(config) and config.timesteps != recipe.window:
            raise ValueError(
                f"a window model reads windows of {config.timesteps} steps, the recipe says "
                f"window={recipe.window}; make them equal"
            )
        self._config = config
        self._params = params
        self._recipe = recipe
        self._scaler = scaler
        self._metrics = dict(metrics or {})
        self._states: dict[str, SeriesState] = dict(states or {})
        self._offset = None if recipe.freq is None else to_offset(recipe.freq)

    # -- views ------------------------------------------------------------------------------
    @property
    def config(self) -> ModelConfig:
        """The model config."""
        return self._config

    @property
    def params(self) -> Params:
        """The parameters."""
        return self._params

    @property
    def recipe(self) -> Recipe:
        """The data recipe."""
        return self._recipe

    @property
    def scaler(self) -> Scaler | None:
        """The scaler, or ``None``."""
        return self._scaler

    @property
    def metrics(self) -> dict[str, Any]:
        """Training metrics (a copy)."""
        return dict(self._metrics)

    @property
    def series_ids(self) -> tuple[str, ...]:
        """The series with a state, in insertion order."""
        return tuple(self._states)

    @property
    def windowed(self) -> bool:
        """Whether forecasts read the last ``window`` readings (stateless LSTM, MLP)."""
        return _is_windowed(self._config)

    def series_state(self, series_id: str) -> SeriesState:
        """The state of a known series, or a fresh one for a new id."""
        return self._states.get(series_id) or self.fresh_state()

    def fresh_state(self) -> SeriesState:
        """The state a new series id starts from (zero recurrent state, nothing seen)."""
        # Zeros as in ``init_state(config, 1)``, made in NumPy: no device round trip per new id.
        units = getattr(self._config, "units", ()) if self._config.stateful else ()
        rnn = tuple(
            LSTMState(h=np.zeros((1, u), np.float32), c=np.zeros((1, u), np.float32)) for u in units
        )
        columns = self._config.features
        return SeriesState(
            rnn=rnn,
            recent=np.zeros((0, columns), np.float32),
            prediction=None,
            last_time=None,
            seen=0,
        )

    # -- validation -------------------------------------------------------------------------
    def _check_id(self, series_id: Any) -> str:
        if not isinstance(series_id, str) or not series_id or len(series_id) > 200:
            raise ValueError(
                f"series id must be a non-empty string of at most 200 characters, got {series_id!r}"
            )
        return series_id

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
        columns = self._config.features
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

    # -- the pure step ----------------------------------------------------------------------
    def advance(
        self, series_id: str, values: Any, timestamps: Sequence[Any] | None = None
    ) -> SeriesState:
        """The state after reading ``values``, without storing it (validates first).

        Args:
            series_id: the series.
            values: ``(readings, columns)`` or ``(readings,)`` for one column, original units.
            timestamps: one per reading (ISO strings, datetimes), or ``None``.

        Returns:
            The new ``SeriesState``; ``commit`` stores it.

        Raises:
            ValueError: a bad id, wrong column count, NaN or infinite values, timestamps out
                of order, with gaps, or missing where the series has them. Nothing changes.
        """
        series_id = self._check_id(series_id)
        return self.advance_many({series_id: values}, {series_id: timestamps})[series_id]

    def advance_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Sequence[Any] | None] | None = None,
    ) -> dict[str, SeriesState]:
        """``advance`` for several series at once (one batched call per piece length).

        Args:
            observations: series id -> readings.
            timestamps: series id -> timestamps (or ``None``); ``None`` for none at all.

        Returns:
            Series id -> new state; nothing is stored.

        Raises:
            ValueError: as ``advance``, for any series; nothing changes.
        """
        timestamps = timestamps or {}
        checked = {}
        for series_id, values in observations.items():
            self._check_id(series_id)
            state = self.series_state(series_id)
            array = self.check_values(series_id, values)
            stamps = self._check_times(series_id, state, timestamps.get(series_id), len(array))
            with np.errstate(over="ignore"):
                scaled = array if self._scaler is None else self._scaler.transform(array)
                scaled = scaled.astype(np.float32)
            overflow = ~np.isfinite(scaled).all(axis=1)
            if overflow.any():
                first = int(np.argmax(overflow))
                raise ValueError(
                    f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
                    "the float32 range the model computes in, once scaled; check its units"
                )
            checked[series_id] = (state, scaled, stamps)
        if self.windowed:
            return self._advance_windowed(checked)
        return self._advance_stateful(checked)

    def _advance_stateful(self, checked: dict) -> dict[str, SeriesState]:
        out = {}
        by_length: dict[int, list[str]] = {}
        for series_id, (_, scaled, _) in checked.items():
            by_length.setdefault(len(scaled), []).append(series_id)
        for length, ids in by_length.items():
            rows = _padded_rows(len(ids))
            # (rows, 2 * sum(units)): every series' packed state, padded to a power of two
            packed = _pad_rows(np.concatenate([_pack_state(checked[i][0].rnn) for i in ids]), rows)
            x = _pad_rows(np.stack([checked[i][1] for i in ids]), rows)  # (rows, n, features)
            y, packed = _run_stateful(self._config, self._params, packed, x)
            rnn = _unpack_state(self._config, packed)
            for row, series_id in enumerate(ids):
                state, scaled, stamps = checked[series_id]
                out[series_id] = SeriesState(
                    rnn=tuple(LSTMState(h=s.h[row : row + 1], c=s.c[row : row + 1]) for s in rnn),
                    recent=state.recent,
                    prediction=y[row],
                    last_time=state.last_time if stamps is None else int(stamps[-1]),
                    seen=state.seen + length,
                )
        return out

    def _advance_windowed(self, checked: dict) -> dict[str, SeriesState]:
        window = self._recipe.window
        recents = {
            series_id: np.concatenate([state.recent, scaled])[-window:]
            for series_id, (state, scaled, _) in checked.items()
        }
        ready = [series_id for series_id, recent in recents.items() if len(recent) == window]
        predictions = {}
        if ready:
            x = np.stack([recents[i] for i in ready])  # (series, window, features)
            y = np.asarray(
                _read_windows(self._config, self._params, _pad_rows(x, _padded_rows(len(ready))))
            )
            predictions = {series_id: y[row] for row, series_id in enumerate(ready)}
        out = {}
        for series_id, (state, scaled, stamps) in checked.items():
            out[series_id] = SeriesState(
                rnn=(),
                recent=recents[series_id],
                prediction=predictions.get(series_id),
                last_time=state.last_time if stamps is None else int(stamps[-1]),
                seen=state.seen + len(scaled),
            )
        return out

    def commit(self, series_id: str, state: SeriesState) -> None:
        """Store a state returned by ``advance`` (rebinding, never in place)."""
        self._states[self._check_id(series_id)] = state

    # -- observe and forecast ---------------------------------------------------------------
    def observe(
        self,
        series_id: str,
        values: Any,
        timestamps: Sequence[Any] | None = None,
        *,
        horizon: int = 1,
    ) -> Forecast:
        """Advance a series through new readings and forecast what follows.

        Args:
            series_id: the series; a new id starts from a fresh state.
            values: ``(readings, columns)`` (or ``(readings,)`` for one column), in the
                original units, oldest first.
            timestamps: one per reading, or ``None`` (then only for series without any).
            horizon: steps to forecast.

        Returns:
            The ``Forecast`` after the last reading.

        Raises:
            ValueError: see ``advance``; on error the series' state is unchanged.
        """
        self._check_horizon(horizon)
        state = self.advance(series_id, values, timestamps)
        self.commit(series_id, state)
        return self.forecast_from(series_id, state, horizon)

    def observe_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Sequence[Any] | None] | None = None,
        *,
        horizon: int = 1,
    ) -> dict[str, Forecast]:
        """``observe`` for many series at once, batched (all or nothing on error).

        Args:
            observations: series id -> readings.
            timestamps: series id -> timestamps, or ``None``.
            horizon: steps to forecast.

        Returns:
            Series id -> ``Forecast``.
        """
        self._check_horizon(horizon)
        states = self.advance_many(observations, timestamps)
        for series_id, state in states.items():
            self.commit(series_id, state)
        return {i: self.forecast_from(i, s, horizon) for i, s in states.items()}

    def forecast(self, series_id: str, horizon: int = 1) -> Forecast:
        """Forecast a known series from its stored state (the state does not change).

        Args:
            series_id: the series.
            horizon: steps to forecast, fed back recursively.

        Returns:
            The ``Forecast``.

        Raises:
            KeyError: unknown series id.
        """
        self._check_horizon(horizon)
        if series_id not in self._states:
            raise KeyError(
                f"unknown series {series_id!r}; observe readings for it first (known: "
                f"{len(self._states)} series)"
            )
        return self.forecast_from(series_id, self._states[series_id], horizon)

    def _check_horizon(self, horizon: Any) -> None:
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, int | np.integer)
            or not 1 <= horizon <= MAX_HORIZON
        ):
            raise ValueError(f"horizon must be an integer from 1 to {MAX_HORIZON}, got {horizon!r}")

    def forecast_from(self, series_id: str, state: SeriesState, horizon: int = 1) -> Forecast:
        """Forecast ``horizon`` steps from ``state`` (recursive; ``state`` is not changed).

        Args:
            series_id: the series (for the result).
            state: its state.
            horizon: steps.

        Returns:
            The ``Forecast``.
        """
        self._check_horizon(horizon)
        if state.prediction is None:
            needed = max(self._recipe.window - len(state.recent), 1) if self.windowed else 1
            return Forecast(
                series_id=series_id, values=None, timestamps=None, seen=state.seen, needed=needed
            )
        steps = [state.prediction]
        if self.windowed:
            recent = state.recent
            for _ in range(horizon - 1):
                recent = np.concatenate([recent[1:], steps[-1][None, :]])  # slide the window
                y = _read_windows(self._config, self._params, recent[None])
                steps.append(np.asarray(y)[0])
        else:
            packed = _pack_state(state.rnn)
            for _ in range(horizon - 1):
                y, packed = _run_stateful(
                    self._config, self._params, packed, steps[-1][None, None, :]
                )
                steps.append(y[0])
        scaled = np.stack(steps)  # (horizon, columns)
        values = (
            scaled.astype(np.float64)
            if self._scaler is None
            else self._scaler.inverse_transform(scaled)
        )
        stamps = None
        if state.last_time is not None and self._offset is not None:
            grid = pd.date_range(
                pd.Timestamp(state.last_time), periods=horizon + 1, freq=self._offset
            )[1:]
            stamps = tuple(t.isoformat() for t in grid)
        return Forecast(
            series_id=series_id, values=values, timestamps=stamps, seen=state.seen, needed=0
        )

    def replay(self, values: Any) -> np.ndarray:
        """One-step predictions after every reading of a whole series, from a fresh state.

        The offline reference for streaming: computed at once (one call over the whole
        series for stateful models, all windows in one batch for window models).

        Args:
            values: ``(time, columns)`` or ``(time,)``, original units.

        Returns:
            ``(time, columns)`` float64: row ``t`` forecasts reading ``t + 1``; NaN where a
            window model has not yet seen ``window`` readings.
        """
        array = self.check_values("replay", values)
        scaled = array if self._scaler is None else self._scaler.transform(array)
        scaled = scaled.astype(np.float32)
        out = np.full(scaled.shape, np.nan, np.float32)
        if self.windowed:
            window = self._recipe.window
            if len(scaled) >= window:
                x = make_windows(scaled, length=window, offset=0).x  # (n, window, columns)
                y = _read_windows(self._config, self._params, x)
                out[window - 1 :] = np.asarray(y)
        elif getattr(self._config, "return_sequences", False):
            out[:] = np.asarray(_read_sequence(self._config, self._params, scaled[None]))[0]
        else:
            packed = _pack_state(self.fresh_state().rnn)
            for t in range(len(scaled)):
                y, packed = _run_stateful(
                    self._config, self._params, packed, scaled[None, t : t + 1]
                )
                out[t] = y[0]
        if self._scaler is None:
            return out.astype(np.float64)
        return self._scaler.inverse_transform(out)

    # -- persistence ------------------------------------------------------------------------
    def to_saved(self) -> SavedModel:
        """Everything to save, as a ``SavedModel``."""
        arrays, meta = encode_states(self._config, self._recipe, self._states)
        return SavedModel(
            config=self._config,
            params=self._params,
            recipe=self._recipe.to_dict(),
            scaler=None if self._scaler is None else self._scaler.to_dict(),
            metrics=self._metrics,
            states=arrays,
            states_meta=meta,
        )

    @classmethod
    def from_saved(cls, saved: SavedModel) -> "Forecaster":
        """Rebuild from a ``SavedModel``."""
        recipe = Recipe.from_dict(saved.recipe)
        return cls(
            saved.config,
            saved.params,
            recipe=recipe,
            scaler=None if saved.scaler is None else Scaler.from_dict(saved.scaler),
            metrics=saved.metrics,
            states=decode_states(saved.config, recipe, saved.states, saved.states_meta),
        )

    def save(self, path: Any) -> None:
        """Save the model and every series' state into a folder, atomically."""
        save_model(path, self.to_saved())

    @classmethod
    def load(cls, path: Any) -> "Forecaster":
        """Load a folder written by ``save`` (checksums verified)."""
        return cls.from_saved(load_model(path))


# --------------------------------------------------------------------------- state encoding


def encode_states(
    config: ModelConfig, recipe: Recipe, states: Mapping[str, SeriesState]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Stack per-series states into flat arrays (for safetensors) and a JSON description.

    Args:
        config: the model.
        recipe: its recipe.
        states: series id -> state.

    Returns:
        ``(arrays, meta)``: ``rnn.{layer}.h``/``.c`` ``(series, units)``, ``recent``
        ``(series, window, columns)`` (left-aligned, ``recent_length`` valid rows),
        ``prediction`` ``(series, columns)`` with ``has_prediction``, ``last_time`` and
        ``seen`` ``(series,)`` int64; ``meta`` holds the series ids in row order.
    """
    ids = list(states)
    count, columns = len(ids), config.features
    arrays: dict[str, np.ndarray] = {}
    for layer, units in enumerate(getattr(config, "units", ()) if config.stateful else ()):
        for name in ("h", "c"):
            rows = [getattr(states[i].rnn[layer], name).reshape(units) for i in ids]
            arrays[f"rnn.{layer}.{name}"] = (
                np.stack(rows) if rows else np.zeros((0, units), np.float32)
            ).astype(np.float32)
    window = recipe.window if not config.stateful else 0
    recent = np.zeros((count, window, columns), np.float32)
    lengths = np.zeros((count,), np.int64)
    prediction = np.zeros((count, columns), np.float32)
    has_prediction = np.zeros((count,), np.uint8)
    last_time = np.full((count,), _NO_TIME, np.int64)
    seen = np.zeros((count,), np.int64)
    for row, series_id in enumerate(ids):
        state = states[series_id]
        k = len(state.recent) if window else 0
        recent[row, :k] = state.recent[-k:] if k else 0.0
        lengths[row] = k
        if state.prediction is not None:
            prediction[row] = state.prediction
            has_prediction[row] = 1
        if state.last_time is not None:
            last_time[row] = state.last_time
        seen[row] = state.seen
    arrays.update(
        recent=recent,
        recent_length=lengths,
        prediction=prediction,
        has_prediction=has_prediction,
        last_time=last_time,
        seen=seen,
    )
    return arrays, {"series": ids}


def decode_states(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
) -> dict[str, SeriesState]:
    """Inverse of ``encode_states``.

    Raises:
        ValueError: arrays missing or of the wrong shape for the model.
    """
    ids = list(meta.get("series", []))
    count = len(ids)
    units = getattr(config, "units", ()) if config.stateful else ()
    needed = [f"rnn.{layer}.{n}" for layer in range(len(units)) for n in ("h", "c")]
    needed += ["recent", "recent_length", "prediction", "has_prediction", "last_time", "seen"]
    missing = [name for name in needed if name not in arrays]
    if missing:
        raise ValueError(f"the saved states lack {missing}; save the model again")
    for name in needed:
        if arrays[name].shape[0] != count:
            raise ValueError(
                f"saved state {name!r} has {arrays[name].shape[0]} rows for {count} series; "
                "save the model again"
            )
    out = {}
    for row, series_id in enumerate(ids):
        rnn = tuple(
            LSTMState(
                h=arrays[f"rnn.{layer}.h"][row : row + 1].copy(),
                c=arrays[f"rnn.{layer}.c"][row : row + 1].copy(),
            )
            for layer in range(len(units))
        )
        k = int(arrays["recent_length"][row])
        last_time = int(arrays["last_time"][row])
        out[series_id] = SeriesState(
            rnn=rnn,
            recent=arrays["recent"][row, :k].copy(),
            prediction=arrays["prediction"][row].copy() if arrays["has_prediction"][row] else None,
            last_time=None if last_time == _NO_TIME else last_time,
            seen=int(arrays["seen"][row]),
        )
    return out


# --------------------------------------------------------------------------- training


@dataclass(frozen=True, kw_only=True, slots=True)
class FitSpec:
    """What ``train_forecaster`` trains.

    Attributes:
        kind: ``"stateful"`` (one LSTM layer, carries state), ``"stacked"`` (stateful, two
            layers by default), ``"stateless"`` (one LSTM layer on windows), ``"mlp"``.
        window: training chunk (stateful) or input window (stateless, MLP), in readings.
        units: LSTM units per layer (hidden sizes for the MLP); ``()`` picks the default:
            ``(20,)``, stacked ``(20, 20)``, MLP ``(32,)``.
        epochs: training epochs.
        batch_size: rows per batch; ``None``: stateful one stream per series, else 32.
        learning_rate: Adam step size.
        scaler: ``"minmax"``, ``"standard"`` or ``"none"``.
        seed: initialisation and shuffling seed.
    """

    kind: str = "stateful"
    window: int = 12
    units: tuple[int, ...] = ()
    epochs: int = 20
    batch_size: int | None = None
    learning_rate: float = 1e-2
    scaler: str = "minmax"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        if self.kind not in MODEL_KINDS:
            raise ValueError(
                f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}; pass e.g. "
                "--model stateful"
            )
        if self.scaler not in ("minmax", "standard", "none"):
            raise ValueError(f"scaler must be 'minmax', 'standard' or 'none', got {self.scaler!r}")

    def model_config(self, columns: int) -> ModelConfig:
        """The model config for ``columns`` columns per reading."""
        if self.kind == "mlp":
            return MLPConfig(
                hidden=self.units or (32,),
                timesteps=self.window,
                features=columns,
                outputs=columns,
            )
        default = (20, 20) if self.kind == "stacked" else (20,)
        stateful = self.kind in ("stateful", "stacked")
        return LSTMConfig(
            units=self.units or default,
            timesteps=self.window,
            features=columns,
            outputs=columns,
            stateful=stateful,
            return_sequences=stateful,
        )


def train_forecaster(
    series: Mapping[str, Any],
    *,
    spec: FitSpec,
    columns: Sequence[str],
    timestamps: Mapping[str, Sequence[Any]] | None = None,
    freq: str | None = None,
    time_col: str | None = None,
    quiet: bool = True,
) -> Forecaster:
    """Train a forecaster on one or more series and leave each at the end of its data.

    Stateful models train on the stream layout (``make_series_streams``: each series one or
    more contiguous streams, next-step targets at every step); window models on sliding
    windows of all series, shuffled. The scaler is fitted on all series together. After
    training, every series is read from a fresh state by ``observe_many``, so each series'
    stored state is exactly where ``observe`` continues.

    Args:
        series: series id -> ``(time, columns)`` (or ``(time,)``) values, oldest first.
        spec: the model and training settings.
        columns: names of the value columns.
        timestamps: series id -> one timestamp per reading, or ``None``.
        freq: the readings' frequency (checked by later ``observe`` calls), or ``None``.
        time_col: the timestamp column's name (informative).
        quiet: no progress bar.

    Returns:
        The trained ``Forecaster``, with the training metrics and one state per series.

    Raises:
        ValueError: no series, series too short for the window or the streams, constant
            columns, or non-finite values.
    """
    if not series:
        raise ValueError("no series to train on; pass at least one")
    columns = tuple(columns)
    arrays = {}
    for series_id, values in series.items():
        array = np.asarray(values, dtype=np.float64)
        arrays[series_id] = array[:, None] if array.ndim == 1 else array
        if not np.isfinite(arrays[series_id]).all():
            raise ValueError(
                f"series {series_id!r} holds NaN or infinite values; clean it before training"
            )
    pooled = np.concatenate(list(arrays.values()))
    scaler = None if spec.scaler == "none" else fit_scaler(pooled, spec.scaler, columns)
    scaled = [
        (a if scaler is None else scaler.transform(a)).astype(np.float32) for a in arrays.values()
    ]
    config = spec.model_config(len(columns))
    train_config = TrainConfig(
        epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        shuffle=not config.stateful,
        seed=spec.seed,
    )
    if config.stateful:
        batch_size = spec.batch_size or len(scaled)
        batches = make_series_streams(
            scaled, batch_size=batch_size, chunk=spec.window, trim="start"
        )
        x_batches, y_batches = batches.x_batches, batches.y_batches
    else:
        windows = [make_windows(s, length=spec.window) for s in scaled]
        x = np.concatenate([w.x for w in windows])  # (samples, window, columns)
        y = np.concatenate([w.y for w in windows])  # (samples, columns)
        batch_size = min(spec.batch_size or 32, len(x))
        num_batches = len(x) // batch_size
        keep = num_batches * batch_size  # the most recent samples that fill whole batches
        # (samples, ...) -> (num_batches, batch, ...)
        x_batches = x[len(x) - keep :].reshape(num_batches, batch_size, *x.shape[1:])
        y_batches = y[len(y) - keep :].reshape(num_batches, batch_size, *y.shape[1:])
    params = init_params(config, spec.seed)
    train_state = init_train_state(config, params, batch_size, train_config)
    started = time.perf_counter()
    train_state, history = fit(config, train_state, x_batches, y_batches, train_config, quiet=quiet)
    seconds = time.perf_counter() - started
    recipe = Recipe(
        kind=spec.kind, window=spec.window, columns=columns, time_col=time_col, freq=freq
    )
    forecaster = Forecaster(config, train_state.params, recipe=recipe, scaler=scaler)
    stamps = None if timestamps is None else {i: list(timestamps[i]) for i in arrays}
    forecaster.observe_many(arrays, stamps)
    one_step = {}
    for series_id, array in arrays.items():
        predicted = forecaster.replay(array)[:-1]  # row t forecasts reading t + 1
        error = predicted - array[1:]
        valid = np.isfinite(error).all(axis=1)
        one_step[series_id] = float(np.sqrt(np.mean(np.square(error[valid]))))
    metrics = {
        "loss": list(history.loss),
        "final_loss": history.loss[-1] if history.loss else None,
        "epochs": spec.epochs,
        "updates": history.updates,
        "batch_size": batch_size,
        "train_seconds": seconds,
        "one_step_rmse": one_step,
        "series": {i: int(len(a)) for i, a in arrays.items()},
        "spec": {
            "kind": spec.kind,
            "window": spec.window,
            "units": list(spec.units),
            "learning_rate": spec.learning_rate,
            "scaler": spec.scaler,
            "seed": spec.seed,
        },
    }
    states = {series_id: forecaster.series_state(series_id) for series_id in arrays}
    return Forecaster(
        config, train_state.params, recipe=recipe, scaler=scaler, metrics=metrics, states=states
    )
