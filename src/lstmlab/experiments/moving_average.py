"""The official Keras example ``lstm_stateful.py``, reproduced step by step.

Input: uniform noise in [-0.1, 0.1]; target: its moving average over ``tsteps`` points; each
sample is a window of ``lahead`` points. The script's claim: with ``lahead < tsteps`` only the
stateful model converges, with ``lahead >= tsteps`` both do. Here convergence is measured: a
model has converged when its test MSE is at most ``threshold`` times the MSE of predicting the
training mean.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd

from lstmlab.core.model import LSTMConfig, StackedParams, init_params, init_state
from lstmlab.core.train import (
    History,
    TrainConfig,
    compile_fit,
    compiled_predict,
    fit,
    init_train_states,
    select_training,
)
from lstmlab.data.layouts import (
    SampleBatches,
    StreamBatches,
    TrimReport,
    make_sample_batches,
    make_stream_batches,
)
from lstmlab.experiments.settings import LAYOUTS, MovingAverageConfig
from lstmlab.runtime import ensure_compile_cache, epoch_progress, in_background

__all__ = [
    "LAYOUTS",
    "Baselines",
    "Batches",
    "ModelOutcome",
    "MovingAverageConfig",
    "MovingAverageData",
    "MovingAverageResult",
    "baselines",
    "initial_params",
    "make_batches",
    "make_data",
    "model_config",
    "predict_samples",
    "run",
    "scoring_batches",
    "train_model",
]


@dataclass(frozen=True, slots=True)
class MovingAverageData:
    """The script's arrays: ``x (n, lahead, 1)``, ``y (n, 1)``, and the frames it prints."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    data_input: pd.DataFrame
    expected_output: pd.DataFrame


def make_data(config: MovingAverageConfig) -> MovingAverageData:
    """Generate the data exactly as ``lstm_stateful.py`` does.

    Args:
        config: the experiment settings.

    Returns:
        ``MovingAverageData`` with float32 arrays.
    """
    np.random.seed(config.seed)  # the script draws from NumPy's legacy global generator
    to_drop = max(config.tsteps - 1, config.lahead - 1)
    data_input = pd.DataFrame(np.random.uniform(-0.1, 0.1, config.input_len + to_drop))
    expected_output = data_input.rolling(window=config.tsteps, center=False).mean()
    if config.lahead > 1:
        data_input = pd.DataFrame(np.repeat(data_input.values, repeats=config.lahead, axis=1))
        for i, column in enumerate(data_input.columns):
            data_input[column] = data_input[column].shift(i)
    expected_output = expected_output[to_drop:]
    data_input = data_input[to_drop:]

    to_train = int(config.input_len * 0.8)
    to_train -= to_train % config.batch_size
    x_train, y_train = data_input[:to_train], expected_output[:to_train]
    x_test, y_test = data_input[to_train:], expected_output[to_train:]
    leftover = data_input.shape[0] % config.batch_size
    if leftover > 0:
        x_test, y_test = x_test[:-leftover], y_test[:-leftover]

    def as_x(frame: pd.DataFrame) -> np.ndarray:
        return frame.values.reshape(frame.shape[0], frame.shape[1], 1).astype(np.float32)

    def as_y(frame: pd.DataFrame) -> np.ndarray:
        return frame.values.reshape(frame.shape[0], 1).astype(np.float32)

    return MovingAverageData(
        x_train=as_x(x_train),
        y_train=as_y(y_train),
        x_test=as_x(x_test),
        y_test=as_y(y_test),
        data_input=data_input,
        expected_output=expected_output,
    )


Batches = SampleBatches | StreamBatches


def make_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, layout: str) -> Batches:
    """Lay out ``(x, y)`` samples in the chosen layout.

    The script's split already makes both parts a multiple of ``batch_size``, so nothing is
    trimmed for data from ``make_data``; the ``trim`` report of the result says so.

    Args:
        x: ``(samples, lahead, 1)``.
        y: ``(samples, 1)``.
        batch_size: rows per batch.
        layout: ``"official"`` or ``"streams"``.

    Returns:
        ``SampleBatches`` or ``StreamBatches`` with ``x_batches (num_batches, batch_size,
        lahead, 1)`` and ``y_batches (num_batches, batch_size, 1)``.

    Raises:
        ValueError: an unknown layout, or a sample count the layout cannot take.
    """
    if layout == "official":
        return make_sample_batches(x, y, batch_size=batch_size, trim="end")
    if layout == "streams":
        return make_stream_batches(x, y, batch_size=batch_size, trim="start")
    raise ValueError(f"layout must be 'official' or 'streams', got {layout!r}")


def model_config(config: MovingAverageConfig, *, stateful: bool) -> LSTMConfig:
    """The script's ``LSTM(units, input_shape=(lahead, 1)) + Dense(1)``."""
    return LSTMConfig(units=(config.units,), timesteps=config.lahead, stateful=stateful)


@dataclass(frozen=True, kw_only=True, slots=True)
class Baselines:
    """Test MSE of predictors that need no training.

    Attributes:
        mean: predicting the training targets' mean (the convergence yardstick).
        last_value: predicting the last input value ``x[t]``.
        window_optimum: the best predictor that sees only the window: the sum of the
            ``min(lahead, tsteps)`` newest inputs divided by ``tsteps`` (the unseen inputs are
            independent with zero mean). Zero when ``lahead >= tsteps``; otherwise the floor of
            a stateless model, e.g. the error of predicting ``x[t] / 2`` for the defaults.
    """

    mean: float
    last_value: float
    window_optimum: float


def baselines(data: MovingAverageData, tsteps: int) -> Baselines:
    """The untrained predictors' test MSE.

    Args:
        data: from ``make_data``.
        tsteps: the moving-average window of the targets.

    Returns:
        ``Baselines``.
    """
    y_test = data.y_test.astype(np.float64)[:, 0]  # (n,)
    x_test = data.x_test.astype(np.float64)[:, :, 0]  # (n, lahead); column 0 is x[t]
    visible = min(x_test.shape[1], tsteps)
    return Baselines(
        mean=float(np.mean(np.square(y_test - data.y_train.astype(np.float64).mean()))),
        last_value=float(np.mean(np.square(y_test - x_test[:, 0]))),
        window_optimum=float(np.mean(np.square(y_test - x_test[:, :visible].sum(axis=1) / tsteps))),
    )


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """One trained model's figures.

    Attributes:
        name: ``"stateful"`` or ``"stateless"``.
        test_mse: MSE of ``predictions`` against the test targets.
        test_mse_layout: with the streams layout, the MSE when the test part is also cut into
            ``batch_size`` streams (each starting from zero state); ``None`` otherwise.
        ratio: ``test_mse`` divided by the mean predictor's MSE.
        converged: ``ratio <= threshold``.
        predictions: ``(n_test, 1)`` in sample order.
        history: per-epoch ``loss`` and ``val_loss``.
        seconds: wall time of training (compilation included).
        updates: parameter updates done (the training state's ``step``).
    """

    name: str
    test_mse: float
    test_mse_layout: float | None
    ratio: float
    converged: bool
    predictions: np.ndarray
    history: History
    seconds: float
    updates: int


@dataclass(frozen=True, slots=True)
class MovingAverageResult:
    """What ``run`` measured.

    Attributes:
        config: the settings.
        data: the generated data.
        stateful: the stateful model's outcome.
        stateless: the stateless model's outcome.
        baselines: untrained predictors' test MSE.
        y_test: ``(n_test, 1)`` test targets in sample order, as the models were scored on.
        train_trim: what the training layout used and left out.
        test_trim: what the test layout (validation) used and left out.
        score_trim: what the scored test predictions used and left out.
    """

    config: MovingAverageConfig
    data: MovingAverageData
    stateful: ModelOutcome
    stateless: ModelOutcome
    baselines: Baselines
    y_test: np.ndarray
    train_trim: TrimReport
    test_trim: TrimReport
    score_trim: TrimReport

    @property
    def mean_mse(self) -> float:
        """MSE of predicting the training mean."""
        return self.baselines.mean

    @property
    def last_value_mse(self) -> float:
        """MSE of predicting the last input value."""
        return self.baselines.last_value

    @property
    def outcomes(self) -> tuple[ModelOutcome, ModelOutcome]:
        """``(stateful, stateless)``."""
        return self.stateful, self.stateless


def scoring_batches(data: MovingAverageData, config: MovingAverageConfig) -> Batches:
    """The test batches the models are scored on.

    The official layout scores as the script does: ``predict(x_test, batch_size=batch_size)``
    in its layout. The streams layout scores the test period as one stream (batch size 1,
    the same weights), from zero state like the script's final ``reset_states()``. Cut into
    ``batch_size`` test streams instead, every stream would start cold: at batch size 32
    that is 32 of 192 test samples predicted without their past, which alone costs a ratio
    of about 0.1 to the mean predictor for ``tsteps=2``; that figure is kept as
    ``ModelOutcome.test_mse_layout``.

    Args:
        data: from ``make_data``.
        config: the experiment settings.

    Returns:
        ``SampleBatches`` or ``StreamBatches`` over ``(x_test, y_test)``.
    """
    if config.layout == "streams":
        return make_stream_batches(data.x_test, data.y_test, batch_size=1, trim="start")
    return make_batches(
        data.x_test, data.y_test, batch_size=config.batch_size, layout=config.layout
    )


def initial_params(config: MovingAverageConfig, *, stateful: bool, seed: int | None = None):
    """The model's initial parameters: ``key(seed + 1)`` stateful, ``key(seed)`` stateless.

    Args:
        config: the experiment settings.
        stateful: which model.
        seed: overrides ``config.seed``.

    Returns:
        ``StackedParams``.
    """
    seed = config.seed if seed is None else seed
    net = model_config(config, stateful=stateful)
    return init_params(net, seed + (1 if stateful else 0))  # the key jax.random.key(seed)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fresh_train_states(net: LSTMConfig, batch_size: int, params: StackedParams, seed):
    """``init_train_states(net, TrainConfig(seed=seed), [params], batch_size)``, compiled.

    One program: built eagerly, each zero moment, the state, the step and the key would be
    a program of its own.
    """
    return init_train_states(net, TrainConfig(), [params], batch_size, keys=[jax.random.key(seed)])


def _train_config(config: MovingAverageConfig) -> TrainConfig:
    return TrainConfig(epochs=config.epochs, reset="epoch", seed=config.seed)


def _validation_state(config: MovingAverageConfig) -> str:
    return "zeros" if config.layout == "streams" else "carry"


def _train_states(config: MovingAverageConfig, params: StackedParams):
    # The state's shape does not depend on `stateful`: both models share the one program.
    return _fresh_train_states(
        model_config(config, stateful=True), config.batch_size, params, np.int32(config.seed)
    )


def _compile_training(config: MovingAverageConfig, train: Batches, test: Batches) -> None:
    """Compile, from shapes alone, the training program (one for both models).

    ``run`` calls it on a thread while it compiles the initial parameters' program: the
    compilations overlap (each releases the GIL), and the ``fit`` that follows compiles
    nothing. Both models share the program (``core.train.program_model``).
    """
    params = jax.eval_shape(lambda: initial_params(config, stateful=True))
    states = jax.eval_shape(lambda: _train_states(config, params))
    compile_fit(
        model_config(config, stateful=True), _train_config(config), states,
        train.x_batches, train.y_batches, validation=(test.x_batches, test.y_batches),
        validation_state=_validation_state(config),
    )


def _compile_predictions(config: MovingAverageConfig, score: Batches) -> None:
    """Compile, from shapes alone, both models' prediction programs (while they train)."""
    params = jax.eval_shape(lambda: initial_params(config, stateful=True))
    for stateful in (True, False):
        net = model_config(config, stateful=stateful)
        state = init_state(net, score.batch_size)
        compiled_predict(net).lower(params, state, score.x_batches).compile()


def train_model(
    config: MovingAverageConfig,
    train: Batches,
    test: Batches,
    *,
    stateful: bool,
    quiet: bool = True,
) -> tuple[StackedParams, History, float, int]:
    """Train one model as the script does.

    The stateful model: the script calls ``fit(epochs=1)`` ``epochs`` times and
    ``reset_states()`` after each; Adam's moments persist across Keras' ``fit`` calls, so this
    is one ``fit`` of ``epochs`` epochs with a reset at every epoch end. The stateless model:
    one ``fit`` of ``epochs`` epochs. With the official layout, validation after each epoch
    runs over ``test`` from the state the epoch ended in, as Keras' ``fit`` does; with the
    streams layout test stream ``i`` does not continue training stream ``i``, so validation
    starts from zero state (its last value is then ``ModelOutcome.test_mse_layout``).

    Args:
        config: the experiment settings.
        train: training batches.
        test: validation batches, in the same layout and batch size.
        stateful: which model.
        quiet: no progress bar.

    Returns:
        ``(params, history, seconds, updates)``; ``updates`` is the training state's ``step``.
    """
    ensure_compile_cache()
    net = model_config(config, stateful=stateful)
    params = initial_params(config, stateful=stateful)
    train_states = _train_states(config, params)
    started = time.perf_counter()
    name = "stateful" if stateful else "stateless"
    with epoch_progress(config.epochs, name, quiet=quiet) as progress:
        train_states, log = fit(
            net,
            _train_config(config),
            train_states,
            train.x_batches,
            train.y_batches,
            validation=(test.x_batches, test.y_batches),
            validation_state=_validation_state(config),
            on_epoch=lambda _, loss, val: progress.advance(float(loss[0]), float(val[0])),
        )
    train_state = select_training(train_states, 0)
    jax.block_until_ready(train_state.params)
    seconds = time.perf_counter() - started
    history = log.history(0)
    return train_state.params, history, seconds, int(train_state.step)


def predict_samples(net: LSTMConfig, params: StackedParams, batches: Batches) -> np.ndarray:
    """Predict ``batches`` from zero state and put the predictions back in sample order.

    Args:
        net: the model.
        params: its parameters.
        batches: ``x_batches (num_batches, batch, lahead, 1)``.

    Returns:
        ``(used_samples, 1)`` in sample order.
    """
    predicted, _ = compiled_predict(net)(
        params,
        init_state(net, batches.batch_size),
        batches.x_batches,  # NumPy: no copy program
    )
    return batches.to_samples(np.asarray(predicted))  # (num_batches, batch, 1) -> (n, 1)


def _print_data(data: MovingAverageData, log: Callable[..., None]) -> None:
    log("Input shape:", data.data_input.shape)
    log("Output shape:", data.expected_output.shape)
    log("Input head: ")
    log(data.data_input.head())
    log("Output head: ")
    log(data.expected_output.head())
    log("Input tail: ")
    log(data.data_input.tail())
    log("Output tail: ")
    log(data.expected_output.tail())


def _print_history(history: History, epochs: int, log: Callable[..., None]) -> None:
    val = history.val_loss or (float("nan"),) * len(history.loss)
    for i, (loss, val_loss) in enumerate(zip(history.loss, val, strict=True)):
        log(f"Epoch {i + 1} / {epochs} - loss: {loss:.4e} - val_loss: {val_loss:.4e}")


def run(
    config: MovingAverageConfig = MovingAverageConfig(),
    *,
    quiet: bool = False,
    log: Callable[..., None] = print,
) -> MovingAverageResult:
    """Generate the data, train the stateful and stateless models, and measure them.

    Prints (through ``log``) what the script prints: the expectation line, shapes, heads and
    tails, and the per-epoch loss and validation loss of each model.

    Args:
        config: the experiment settings.
        quiet: no progress bars.
        log: where the script's printed lines go (``print`` by default).

    Returns:
        ``MovingAverageResult``.

    Example:
        >>> result = run(MovingAverageConfig(input_len=100, epochs=1), quiet=True,
        ...              log=lambda *a: None)
        >>> result.stateful.predictions.shape
        (20, 1)
    """
    ensure_compile_cache()  # programs compiled once per machine, not once per process
    log("*" * 33)
    log(
        "STATELESS LSTM WILL ALSO CONVERGE"
        if config.expect_stateless_converges
        else "STATELESS LSTM WILL NOT CONVERGE"
    )
    log("*" * 33)
    log("Generating Data...")
    data = make_data(config)
    _print_data(data, log)
    log("x_train.shape: ", data.x_train.shape)
    log("y_train.shape: ", data.y_train.shape)
    log("x_test.shape: ", data.x_test.shape)
    log("y_test.shape: ", data.y_test.shape)
    train = make_batches(
        data.x_train, data.y_train, batch_size=config.batch_size, layout=config.layout
    )
    test = make_batches(
        data.x_test, data.y_test, batch_size=config.batch_size, layout=config.layout
    )
    score = scoring_batches(data, config)
    log(f"Layout {config.layout}: train {train.trim}; test {test.trim}")
    y_test = score.to_samples(score.y_batches).astype(np.float64)  # (n_test, 1)
    reference = baselines(data, config.tsteps)
    # The training program compiles on a thread while this one compiles the initial
    # parameters' program and the training states'; the prediction programs compile on it
    # next, while the models train.
    training = in_background(_compile_training, config, train, test)
    for stateful in (True, False):
        _train_states(config, initial_params(config, stateful=stateful))
    training.result()
    prediction_programs = in_background(_compile_predictions, config, score)

    outcomes = {}
    for stateful in (True, False):
        name = "stateful" if stateful else "stateless"
        net = model_config(config, stateful=stateful)
        log(f"Creating {name.capitalize()} Model...")
        log("Training")
        params, history, seconds, updates = train_model(
            config, train, test, stateful=stateful, quiet=quiet
        )
        _print_history(history, config.epochs, log)
        log("Predicting")
        prediction_programs.result()  # compiled while the models trained
        predictions = predict_samples(net, params, score)
        test_mse = float(np.mean(np.square(y_test - predictions)))
        test_mse_layout = None
        if config.layout == "streams":
            in_layout = predict_samples(net, params, test)
            targets = test.to_samples(test.y_batches).astype(np.float64)
            test_mse_layout = float(np.mean(np.square(targets - in_layout)))
        ratio = test_mse / reference.mean
        outcomes[name] = ModelOutcome(
            name=name,
            test_mse=test_mse,
            test_mse_layout=test_mse_layout,
            ratio=ratio,
            converged=bool(ratio <= config.threshold),
            predictions=predictions,
            history=history,
            seconds=seconds,
            updates=updates,
        )
        log(
            f"{name}: test MSE {test_mse:.3e} = {ratio:.3f} x mean predictor "
            f"({'converged' if ratio <= config.threshold else 'not converged'}; "
            f"{updates} updates, {seconds:.2f} s)"
        )
    return MovingAverageResult(
        config=config,
        data=data,
        stateful=outcomes["stateful"],
        stateless=outcomes["stateless"],
        baselines=reference,
        y_test=y_test,
        train_trim=train.trim,
        test_trim=test.trim,
        score_trim=score.trim,
    )
