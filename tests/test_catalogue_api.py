"""The catalogue of bad inputs to the Python API (issue 12): each case, its error and message.

One row per case: (case name, the call, the exception type, a fragment of its message). The
call is made on a fresh forecaster (built from random weights, or fitted in a second on a
small series) so that no case depends on another. Every case must raise exactly the type
named (a ``ValueError`` subclass does not pass for a ``ValueError``: the type is part of the
contract) with the fragment in its message; a case that raises nothing fails, so none is
silently accepted. The counterpart catalogues: ``test_catalogue_cli.py`` (exit codes) and
``test_catalogue_http.py`` (HTTP statuses).
"""

import numpy as np
import pandas as pd
import pytest

from lstmlab.core.model import LSTMConfig, MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.experiments.settings import ModelSpec, MovingAverageConfig
from lstmlab.forecaster import Forecaster, ForecasterConfig, Recipe
from lstmlab.live.service import ServeConfig
from lstmlab.model_folder import ModelFolderError
from lstmlab.readings import ConflictError

WINDOW = 3


def _model(kind="stateful"):
    """A forecaster of random weights, a standard scaler fitted on N(10, 4), 15-minute data."""
    if kind == "stateful":
        config = LSTMConfig(units=(4,), timesteps=WINDOW, features=1, outputs=1, stateful=True)
    else:
        config = MLPConfig(hidden=(5,), timesteps=WINDOW, features=1, outputs=1)
    scaler = fit_scaler(np.random.default_rng(0).normal(10.0, 4.0, (50, 1)), "standard", ("c0",))
    recipe = Recipe(kind=kind, window=WINDOW, columns=("c0",), freq="15min")
    return Forecaster.from_params(config, init_params(config, 0), recipe=recipe, scaler=scaler)


def _times(start, count):
    grid = pd.date_range("2024-01-01", periods=start + count, freq="15min")[start:]
    return [t.isoformat() for t in grid]


def _observed(kind="stateful", stamps=None):
    """A forecaster whose series 's' has four readings (timestamps ``stamps`` or naive)."""
    model = _model(kind)
    model.observe("s", [9.0, 10.0, 11.0, 12.0], stamps or _times(0, 4))
    return model


def _monthly(length=40, seed=5):
    values = 100 + np.cumsum(np.random.default_rng(seed).normal(1.0, 3.0, length))
    return pd.Series(values, index=pd.date_range("2020-01-01", periods=length, freq="MS"))


def _with(values, position, value):
    values = values.copy()
    values.iloc[position] = value
    return values


QUICK = {"model": "mlp", "window": 3, "units": (4,), "epochs": 1, "validation": 0.0, "norm": "none"}
AWARE = ["2024-03-01T05:00:00+05:00", "2024-03-01T05:15:00+05:00"]
AWARE4 = [t.isoformat() for t in pd.date_range(AWARE[0], periods=4, freq="15min")]
LATE4 = [t.isoformat() for t in pd.date_range("2262-04-11T22:30", periods=4, freq="15min")]


def _fit(data, **kwargs):
    return Forecaster(**QUICK).fit(data, **kwargs)


def _saved(tmp_path):
    model = _model("mlp")
    model.save(tmp_path / "m")
    return tmp_path / "m"


def _numbered(index, **kwargs):
    """``fit`` on the monthly values with row labels ``index`` (step numbers, or not)."""
    return _fit(pd.DataFrame({"v": _monthly().to_numpy()}, index=index), **kwargs)


def _stepped():
    """A model of a series numbered by steps 1 to 40, fitted."""
    return _numbered(np.arange(1, 41))


def _observed_twice(model, series_id, step):
    model.observe(series_id, [1.0], [step])
    return model.observe(series_id, [2.0], [step])


# (case name, call(tmp_path), exception type, message fragment)
CASES = [
    # -- series numbered by steps (an integer index): one stride, no gap, whole numbers
    (
        "step index with a gap (filtered rows)",
        lambda _: _numbered(np.delete(np.arange(41), 3)),
        ValueError,
        "step 4 at row 3, expected 3 (steps of 1): a gap or an uneven step; fill the missing steps",
    ),
    (
        "step index out of order",
        lambda _: _numbered(np.arange(40)[::-1]),
        ValueError,
        "step 38 at row 1 follows step 39; a series' steps must increase",
    ),
    (
        "step index of floats",
        lambda _: _numbered(np.arange(40) * 1.0),
        ValueError,
        "index holds float64 values (0.0, 1.0, 2.0, ...), which are neither timestamps nor "
        "step numbers",
    ),
    (
        "step index with freq",
        lambda _: _numbered(np.arange(40), freq="D"),
        ValueError,
        "freq='D' was given, but series 'v' is numbered by steps (0, 1, 2, ...), not "
        "timestamps; leave freq out",
    ),
    (
        "step series observed with a timestamp",
        lambda _: _stepped().observe("v", [1.0], ["2024-01-01"]),
        ValueError,
        "reading 0's step ('2024-01-01') is not a step number",
    ),
    (
        "step series observed past a gap",
        lambda _: _stepped().observe("v", [1.0], [43]),
        ValueError,
        "reading at step 43, expected step 41 (steps of 1): a gap",
    ),
    (
        "step series observed again with other values",
        lambda _: _observed_twice(_stepped(), "v", 41),
        ConflictError,
        "the reading with step 41 was already accepted with values [1.0], got [2.0]",
    ),
    (
        "timestamped series observed with step numbers",
        lambda _: _fit(_monthly()).observe("0", [1.0], [41]),
        ValueError,
        "the timestamps are integers (41, ...), which number steps, but this model's series "
        "have timestamps",
    ),
    # -- readings: the existing checks (tests/test_forecaster.py)
    (
        "reading repeating an accepted timestamp with other values",
        lambda _: _observed().observe("s", [1.0], [_times(3, 1)[0]]),
        ConflictError,
        "the reading with timestamp 2024-01-01T00:45:00 was already accepted with values "
        "[12.0], got [1.0]; a repeated reading must be identical",
    ),
    (
        "reading out of time order",
        lambda _: _observed().observe("s", [1.0], ["2024-01-01T00:40:00"]),
        ConflictError,
        "the reading with timestamp 2024-01-01T00:40:00 is older than the series' last "
        "accepted reading and was never accepted here; readings must arrive in time order",
    ),
    (
        "reading off the grid",
        lambda _: _observed().observe("s", [1.0], [_times(5, 1)[0]]),
        ValueError,
        "expected 2024-01-01T01:00:00 (frequency 15min): a gap or an off-grid reading",
    ),
    (
        "timestamps not increasing",
        lambda _: _observed().observe("s", [1.0, 2.0], _times(4, 2)[::-1]),
        ValueError,
        "timestamps are not strictly increasing at reading 1",
    ),
    (
        "NaN reading",
        lambda _: _observed().observe("s", [1.0, np.nan], _times(4, 2)),
        ValueError,
        "reading 1 holds NaN or infinite values ([nan]); readings must be finite",
    ),
    (
        "infinite reading",
        lambda _: _model().observe("s", [np.inf]),
        ValueError,
        "reading 0 holds NaN or infinite values ([inf])",
    ),
    (
        "two values for a one-column model",
        lambda _: _observed().observe("s", [[1.0, 2.0]], _times(4, 1)),
        ValueError,
        "each reading needs 1 value(s) (columns ['c0']), got 2; pass values of shape",
    ),
    (
        "no readings",
        lambda _: _observed().observe("s", [], []),
        ValueError,
        "series 's': no readings given; pass at least one",
    ),
    (
        "reading beyond float32 once scaled",
        lambda _: _observed().observe("s", [[1e300]], _times(4, 1)),
        ValueError,
        "reading 0 ([1e+300]) is beyond the float32 range the model computes in",
    ),
    (
        "timestamps missing where the series has them",
        lambda _: _observed().observe("s", [1.0]),
        ValueError,
        "series 's' has timestamps up to 2024-01-01T00:45:00; pass timestamps",
    ),
    (
        "unparseable timestamp",
        lambda _: _observed().observe("s", [1.0], ["yesterday-ish"]),
        ValueError,
        "series 's': timestamps could not be parsed",
    ),
    (
        "fewer timestamps than readings",
        lambda _: _observed().observe("s", [1.0, 2.0], _times(4, 1)),
        ValueError,
        "series 's': 1 timestamps for 2 readings; pass one timestamp per reading",
    ),
    (
        "text reading",
        lambda _: _observed().observe("s", [["x"]], _times(4, 1)),
        ValueError,
        "series 's': readings must be numbers",
    ),
    (
        "a bad series in a batch",
        lambda _: _model().observe_many({"a": [1.0, 2.0], "b": [np.inf]}),
        ValueError,
        "series 'b': reading 0 holds NaN",
    ),
    (
        "empty series id",
        lambda _: _model().observe("", [1.0]),
        ValueError,
        "series id must be a non-empty string",
    ),
    (
        "series id with a NUL byte",
        lambda _: _model().observe("a\x00b", [1.0]),
        ValueError,
        "series id must not hold control characters",
    ),
    (
        "series id that is not a string",
        lambda _: _model().observe(7, [1.0]),
        ValueError,
        "series id must be a non-empty string",
    ),
    (
        "horizon 0 on observe",
        lambda _: _model().observe("s", [1.0], horizon=0),
        ValueError,
        "horizon must be an integer from 1 to 10000, got 0",
    ),
    # -- readings: issue 12
    (
        "absurd reading 1e39 (beyond float32)",
        lambda _: _model().observe("s", [1e39]),
        ValueError,
        "is beyond the float32 range the model computes in",
    ),
    (
        "absurd reading 1e39 with the check off",
        lambda _: _model().observe("s", [1e39], plausible_factor=None),
        ValueError,
        "no plausible_factor accepts a value beyond 3.403e+38",
    ),
    (
        "implausible reading",
        lambda _: _model().observe("s", [1e6]),
        ValueError,
        "series 's': reading 0 (1e+06) is outside the plausible range",
    ),
    (
        "implausible reading, check_values",
        lambda _: _model().check_values("s", [-1e6]),
        ValueError,
        "or none (plausible_factor=None, --allow-implausible)",
    ),
    (
        "implausible reading of a fitted series",
        lambda _: _fit(_monthly()).observe("0", [1e5], ["2023-05-01"]),
        ValueError,
        "(10 training ranges around the training values",
    ),
    (
        "plausible_factor 0",
        lambda _: _model().observe("s", [1.0], plausible_factor=0),
        ValueError,
        "plausible_factor must be > 0, got 0; pass e.g. 10, or None",
    ),
    (
        "plausible_factor not a number",
        lambda _: _model().check_values("s", [1.0], plausible_factor="10"),
        ValueError,
        "plausible_factor must be > 0, got '10'",
    ),
    (
        "plausible_factor NaN",
        lambda _: _model().advance("s", [1.0], plausible_factor=float("nan")),
        ValueError,
        "plausible_factor must be > 0, got nan",
    ),
    # -- time: issue 12
    (
        "naive after aware",
        lambda _: _observed(stamps=AWARE4).observe("s", [1.0], ["2024-03-01T06:00:00"]),
        ValueError,
        "series 's' has time-zone aware timestamps (up to 2024-03-01T05:45:00+05:00), got naive "
        "ones",
    ),
    (
        "aware after naive",
        lambda _: _observed().observe("s", [1.0], ["2024-01-01T01:00:00+00:00"]),
        ValueError,
        "series 's' has naive timestamps (up to 2024-01-01T00:45:00), got aware ones",
    ),
    (
        "aware and naive in one request",
        lambda _: _model().observe("s", [1.0, 2.0], [AWARE[0], "2024-03-01T05:15:00"]),
        ValueError,
        "timestamp 0 has a time zone and timestamp 1 has none",
    ),
    (
        "naive and aware in one request",
        lambda _: _model().observe("s", [1.0, 2.0], ["2024-03-01T05:00:00", AWARE[1]]),
        ValueError,
        "timestamp 1 has a time zone and timestamp 0 has none",
    ),
    (
        "reading whose forecast passes pandas' last timestamp",
        lambda _: _model().observe("s", [1.0], ["2262-04-11T23:45:00"]),
        ValueError,
        "1 forecast step(s) of 15min after 2262-04-11T23:45:00 pass the last timestamp",
    ),
    (
        "reading whose longer forecast passes pandas' last timestamp",
        lambda _: _model().observe("s", [1.0], ["2262-04-11T23:00:00"], horizon=4),
        ValueError,
        "4 forecast step(s) of 15min after 2262-04-11T23:00:00 pass the last timestamp",
    ),
    (
        "timestamp before pandas' first",
        lambda _: _model().observe("s", [1.0], ["1500-01-01T00:00:00"]),
        ValueError,
        "series 's': timestamp 0 (1500-01-01 00:00:00) is outside the range of timestamps "
        "(1677-09-21T00:12:44 to 2262-04-11T23:47:16)",
    ),
    (
        "missing timestamp",
        lambda _: _model().observe("s", [1.0, 2.0], ["2024-01-01T00:00:00", None]),
        ValueError,
        "timestamp 1 is missing (NaT)",
    ),
    # -- forecasts (existing)
    (
        "forecast of an unknown series",
        lambda _: _model().series_forecast("nope"),
        KeyError,
        "unknown series 'nope'",
    ),
    (
        "forecast frame of an unknown series",
        lambda _: _model().forecast(3, series="nope"),
        KeyError,
        "unknown series 'nope'",
    ),
    (
        "horizon 0",
        lambda _: _observed().series_forecast("s", 0),
        ValueError,
        "horizon must be an integer from 1 to 10000, got 0",
    ),
    (
        "horizon 0 on forecast",
        lambda _: _observed().forecast(0),
        ValueError,
        "horizon must be an integer from 1 to 10000, got 0",
    ),
    (
        "horizon beyond the limit",
        lambda _: _observed().forecast(10_001),
        ValueError,
        "horizon must be an integer from 1 to 10000, got 10001",
    ),
    (
        "level without validation residuals",
        lambda _: _observed().forecast(1, level=0.9),
        ValueError,
        "this model has no validation residuals to calibrate intervals on",
    ),
    (
        "level neither a fraction nor a percent",
        lambda _: _observed().forecast(1, level=150),
        ValueError,
        "level 150 is neither a fraction in (0, 1) nor a percent in (1, 100); pass a fraction",
    ),
    (
        "level 1 (100% or 1%?)",
        lambda _: _observed().forecast(1, level=1),
        ValueError,
        "level 1 is neither a fraction in (0, 1) nor a percent in (1, 100)",
    ),
    (
        "level not a number",
        lambda _: _observed().forecast(1, level="90%"),
        ValueError,
        "level must be a number, got '90%'; pass a fraction, a percent or a list",
    ),
    (
        "forecast with no timestamps left before pandas' last",
        lambda _: _observed("mlp", LATE4).series_forecast("s", 3),
        ValueError,
        "3 forecast step(s) of 15min after 2262-04-11T23:15:00 pass the last timestamp",
    ),
    (
        "unfitted forecast",
        lambda _: Forecaster().forecast(3),
        ValueError,
        "this Forecaster is not fitted yet; call fit",
    ),
    # -- delete_series and warm_up: issue 12
    (
        "delete_series with an empty id",
        lambda _: _model().delete_series(""),
        ValueError,
        "series id must be a non-empty string",
    ),
    (
        "delete_series with a newline in the id",
        lambda _: _model().delete_series("a\nb"),
        ValueError,
        "series id must not hold control characters",
    ),
    (
        "delete_series before fitting",
        lambda _: Forecaster().delete_series("s"),
        ValueError,
        "this Forecaster is not fitted yet",
    ),
    (
        "warm_up with no readings",
        lambda _: _model().warm_up(0, 1),
        ValueError,
        "max_readings must be",
    ),
    (
        "warm_up beyond the readings bound",
        lambda _: _model().warm_up(1_000_001, 1),
        ValueError,
        "max_readings must be at most 1000000, got 1000001; pass fewer (the warm-up compiles "
        "reads up to it)",
    ),
    (
        "service max_readings beyond the bound",
        lambda _: ServeConfig(max_readings=1_000_001),
        ValueError,
        "max_readings must be at most 1000000, got 1000001; pass fewer (the warm-up compiles "
        "reads up to it)",
    ),
    (
        "warm_up beyond the horizon limit",
        lambda _: _model().warm_up(1, 10_001),
        ValueError,
        "max_horizon must be an integer from 1 to 10000, got 10001",
    ),
    # -- fit (existing)
    (
        "fit on irregular timestamps",
        lambda _: _fit(
            pd.Series(
                [1.0, 2.0, 4.0, 3.0],
                index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]),
            )
        ),
        ValueError,
        "cannot infer the frequency of series '0' from its timestamps",
    ),
    (
        "fit with a gap",
        lambda _: _fit(
            pd.Series(
                [1.0, 2.0, 4.0, 3.0],
                index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]),
            ),
            freq="D",
        ),
        ValueError,
        "series '0': reading 2 has timestamp 2024-01-05 00:00:00, expected 2024-01-03",
    ),
    (
        "fit on a text column",
        lambda _: _fit(pd.DataFrame({"when": ["2024-01-01", "2024-01-02"], "v": [1.0, 2.0]})),
        ValueError,
        "series 'when': column 'when' is not numeric",
    ),
    (
        "fit with NaN inside",
        lambda _: _fit(pd.DataFrame({"v": [1.0, np.nan, 3.0, 4.0]})),
        ValueError,
        "series 'v' holds NaN or infinite values at row 1",
    ),
    (
        "fit on a constant series",
        lambda _: _fit(pd.DataFrame({"v": [2.0] * 10})),
        ValueError,
        "series 'v': constant series",
    ),
    (
        "fit on text",
        lambda _: _fit(np.array(["a", "b"])),
        ValueError,
        "data must be a DataFrame, a Series or a numeric array",
    ),
    (
        "fit with freq on an array",
        lambda _: _fit(np.arange(20.0), freq="D"),
        ValueError,
        "freq='D' was given for an array, which has no timestamps",
    ),
    (
        "fit on no series",
        lambda _: _fit(pd.DataFrame()),
        ValueError,
        "no series to train on",
    ),
    # -- fit: issue 12
    (
        "fit on a cell at 1e30",
        lambda _: _fit(_with(_monthly(), 17, 1e30)),
        ValueError,
        "series '0': value 1e+30 at row 17 (2021-06-01 00:00:00) is an absurd outlier",
    ),
    (
        "fit on a sentinel code",
        lambda _: _fit(pd.DataFrame({"load": _with(_monthly(), 3, -999999.0).to_numpy()})),
        ValueError,
        "pass allow_outliers=True (lstmlab fit --allow-outliers) to train on it",
    ),
    (
        "fit on a cell beyond float32, outliers allowed",
        lambda _: _fit(_with(_monthly(), 5, 1e39), allow_outliers=True),
        ValueError,
        "value 1e+39 at row 5 (2020-06-01 00:00:00) is beyond the float32 range",
    ),
    # -- configuration (existing and issue 12)
    (
        "config and fields both",
        lambda _: Forecaster(config=ForecasterConfig(), epochs=3),
        ValueError,
        "pass either config= or the config's fields",
    ),
    (
        "config of the wrong type",
        lambda _: Forecaster(config={"epochs": 3}),
        ValueError,
        "config must be a ForecasterConfig, got dict",
    ),
    (
        "norm auto without validation",
        lambda _: ForecasterConfig(validation=0),
        ValueError,
        "norm='auto' chooses the normalisation on the",
    ),
    (
        "validation 1",
        lambda _: ForecasterConfig(validation=1.0),
        ValueError,
        "validation must be a fraction",
    ),
    ("batch size 0", lambda _: ForecasterConfig(batch_size=0), ValueError, "batch_size must be"),
    ("epochs -1", lambda _: ForecasterConfig(epochs=-1), ValueError, "epochs must be"),
    (
        "epochs beyond the bound",
        lambda _: ForecasterConfig(epochs=1_000_001),
        ValueError,
        "epochs must be at most 1000000, got 1000001; pass fewer epochs",
    ),
    (
        "compare model epochs beyond the bound",
        lambda _: ModelSpec(model="mlp", epochs=10**20),
        ValueError,
        "epochs must be at most 1000000, got 100000000000000000000; pass fewer epochs",
    ),
    (
        "moving-average epochs beyond the bound",
        lambda _: MovingAverageConfig(epochs=1_000_001),
        ValueError,
        "epochs must be at most 1000000, got 1000001; pass fewer epochs",
    ),
    ("seeds 0", lambda _: ForecasterConfig(seeds=0), ValueError, "seeds must be"),
    (
        "seed beyond 64 bits",
        lambda _: ForecasterConfig(seed=1180591620717411303424),
        ValueError,
        "seed must be an integer from 0 to 2147483643 (with 5 seeds the last, seed + 4, must be at "
        "most 2147483647), got 1180591620717411303424",
    ),
    ("unknown model", lambda _: ForecasterConfig(model="gru"), ValueError, "model must be one of"),
    (
        "learning rate 0",
        lambda _: ForecasterConfig(learning_rate=0.0),
        ValueError,
        "learning_rate must be > 0, got 0.0; pass e.g. 3e-3",
    ),
    (
        "horizon beyond the limit in the config",
        lambda _: ForecasterConfig(horizon=10_001),
        ValueError,
        "horizon must be an integer from 1 to 10000",
    ),
    (
        "outputs differ from features",
        lambda _: Forecaster.from_params(
            LSTMConfig(units=(3,), features=1, outputs=2),
            init_params(LSTMConfig(units=(3,), features=1, outputs=2), 0),
            recipe=Recipe(),
        ),
        ValueError,
        "outputs must equal features, got outputs=2 and features=1",
    ),
    (
        "window disagrees with the recipe",
        lambda _: Forecaster.from_params(
            MLPConfig(hidden=(3,), timesteps=4),
            init_params(MLPConfig(hidden=(3,), timesteps=4), 0),
            recipe=Recipe(window=1),
        ),
        ValueError,
        "the model reads windows of 4 steps, the recipe says window=1",
    ),
    # -- load
    (
        "load a folder that does not exist",
        lambda tmp_path: Forecaster.load(tmp_path / "missing"),
        ModelFolderError,
        "missing",
    ),
    (
        "load a file",
        lambda tmp_path: Forecaster.load(_write(tmp_path / "file.txt", "hello")),
        ModelFolderError,
        "file.txt",
    ),
    (
        "load a folder whose config is garbage",
        lambda tmp_path: Forecaster.load(_spoil(_saved(tmp_path), "config.json", "{not json")),
        ModelFolderError,
        "config.json",
    ),
    # -- issue 21: values float64 would change
    (
        "fit a bool column",
        lambda _: _fit(_monthly().gt(100).to_frame("v")),
        ValueError,
        "column 'v' holds True/False (dtype bool), not measurements",
    ),
    (
        "fit a complex column",
        lambda _: _fit((_monthly() + 1j).to_frame("v")),
        ValueError,
        "column 'v' holds complex numbers (dtype complex128)",
    ),
    (
        "fit integers beyond 2**53",
        lambda _: _fit(
            pd.DataFrame({"v": np.arange(40, dtype=np.int64) + 2**53 + 1}, _monthly().index)
        ),
        ValueError,
        "holds the integer 9007199254740993, beyond 2**53",
    ),
    # -- issue 21: tracebacks that became refusals
    (
        "fit with two columns of one name",
        lambda _: _fit(
            pd.DataFrame([[1.0, 2.0]] * 40, columns=["a", "a"], index=_monthly().index),
            target="a",
        ),
        ValueError,
        "the DataFrame has several columns named ['a']",
    ),
    (
        "fit with a zero frequency",
        lambda _: _fit(_monthly(), freq="0D"),
        ValueError,
        "freq='0D' is a step of 0: readings move forward in time",
    ),
    (
        "fit with a learning rate float32 cannot hold",
        lambda _: Forecaster(learning_rate=1e300),
        ValueError,
        "learning_rate must be at most 3.4e+38",
    ),
    (
        "fit that diverges",
        lambda _: Forecaster(**{**QUICK, "epochs": 3, "learning_rate": 1e30}).fit(_monthly()),
        ValueError,
        "training diverged: every seed of mlp (none) ended with non-finite weights",
    ),
    (
        "save onto a file",
        lambda tmp_path: _model("mlp").save(_write(tmp_path / "file", "x")),
        ModelFolderError,
        "is a file, not a folder: a model is saved as a folder",
    ),
    (
        "save below a file",
        lambda tmp_path: _model("mlp").save(_write(tmp_path / "file", "x") / "model"),
        ModelFolderError,
        "pass a path whose parent folders are folders",
    ),
]


def _write(path, text):
    path.write_text(text)
    return path


def _spoil(folder, name, text):
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [pytest.param(call, error, fragment, id=name) for name, call, error, fragment in CASES],
)
def test_bad_input_gets_its_error_and_message(tmp_path, call, error, fragment):
    with pytest.raises(Exception) as caught:  # noqa: PT011 (the exact type is asserted below)
        call(tmp_path)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    message = caught.value.args[0] if isinstance(caught.value, KeyError) else str(caught.value)
    assert fragment in message


def test_the_catalogue_names_every_case_once():
    names = [name for name, *_ in CASES]
    assert len(names) == len(set(names)) >= 60
