import numpy as np
import pandas as pd
import pytest

from lstmlab.experiments.moving_average import (
    MovingAverageConfig,
    baselines,
    make_data,
    run,
    scoring_batches,
)


def script_data(input_len, tsteps, lahead, batch_size, seed):
    """lstm_stateful.py's steps, written out as the script writes them."""
    np.random.seed(seed)
    to_drop = max(tsteps - 1, lahead - 1)
    data_input = pd.DataFrame(np.random.uniform(-1 * 0.1, +1 * 0.1, input_len + to_drop))
    expected_output = data_input.rolling(window=tsteps, center=False).mean()
    if lahead > 1:
        data_input = np.repeat(data_input.values, repeats=lahead, axis=1)
        data_input = pd.DataFrame(data_input)
        for i, c in enumerate(data_input.columns):
            data_input[c] = data_input[c].shift(i)
    expected_output = expected_output[to_drop:]
    data_input = data_input[to_drop:]

    x, y = data_input, expected_output
    to_train = int(input_len * 0.8)
    to_train -= to_train % batch_size
    x_train, y_train = x[:to_train], y[:to_train]
    x_test, y_test = x[to_train:], y[to_train:]
    to_drop = x.shape[0] % batch_size
    if to_drop > 0:
        x_test = x_test[:-1 * to_drop]
        y_test = y_test[:-1 * to_drop]

    def reshape_3(a):
        return a.values.reshape((a.shape[0], a.shape[1], 1))

    def reshape_2(a):
        return a.values.reshape((a.shape[0], 1))

    return reshape_3(x_train), reshape_2(y_train), reshape_3(x_test), reshape_2(y_test)


@pytest.mark.parametrize(
    ("input_len", "tsteps", "lahead", "batch_size", "seed"),
    [
        (1000, 2, 1, 1, 1986),
        (1000, 3, 1, 32, 1986),
        (1000, 2, 2, 1, 7),
        (300, 1, 3, 7, 0),
        (500, 4, 2, 32, 11),
        (257, 2, 5, 3, 1986),
    ],
)
def test_make_data_follows_the_script(input_len, tsteps, lahead, batch_size, seed):
    config = MovingAverageConfig(
        input_len=input_len, tsteps=tsteps, lahead=lahead, batch_size=batch_size, seed=seed
    )
    data = make_data(config)
    expected = script_data(input_len, tsteps, lahead, batch_size, seed)
    for ours, theirs in zip(
        (data.x_train, data.y_train, data.x_test, data.y_test), expected, strict=True
    ):
        assert ours.shape == theirs.shape
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs.astype(np.float32))
    assert not np.isnan(data.x_train).any() and not np.isnan(data.y_test).any()
    assert len(data.x_train) % batch_size == 0 and len(data.x_test) % batch_size == 0


def test_make_data_draws_from_the_legacy_global_generator():
    a = make_data(MovingAverageConfig(input_len=100, seed=3))
    np.random.seed(3)
    first = np.random.uniform(-0.1, 0.1, 2)
    # tsteps=2: the first kept input is the second draw, its target the mean of both
    assert a.x_train[0, 0, 0] == np.float32(first[1])
    assert a.y_train[0, 0] == np.float32(first.mean())


def test_baselines_match_their_definitions():
    config = MovingAverageConfig(input_len=400, tsteps=3, lahead=2)
    data = make_data(config)
    base = baselines(data, config.tsteps)
    y = data.y_test[:, 0].astype(np.float64)
    x_now, x_before = data.x_test[:, 0, 0].astype(np.float64), data.x_test[:, 1, 0]
    # the unseen third input of the 3-point mean is what the window optimum misses
    np.testing.assert_allclose(base.window_optimum, np.mean((y - (x_now + x_before) / 3) ** 2))
    np.testing.assert_allclose(base.last_value, np.mean((y - x_now) ** 2))
    np.testing.assert_allclose(base.mean, np.mean((y - data.y_train.mean()) ** 2), rtol=1e-6)
    full = baselines(make_data(MovingAverageConfig(input_len=400, tsteps=2, lahead=2)), 2)
    assert full.window_optimum < 1e-12 < base.window_optimum


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tsteps": 0}, "tsteps must be a positive integer, got 0; pass an int >= 1"),
        ({"epochs": -1}, "epochs must be an integer >= 0, got -1"),
        ({"threshold": 0.0}, "threshold must be > 0, got 0.0"),
        ({"layout": "rows"}, "layout must be 'official' or 'streams', got 'rows'"),
        ({"input_len": 40, "batch_size": 32}, "input_len=40 is too short for batch_size=32"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MovingAverageConfig(**changes)


def test_streams_are_scored_as_one_test_stream():
    config = MovingAverageConfig(input_len=300, batch_size=8, layout="streams")
    data = make_data(config)
    score = scoring_batches(data, config)
    assert score.batch_size == 1
    np.testing.assert_array_equal(score.to_samples(score.x_batches), data.x_test)
    official = scoring_batches(data, MovingAverageConfig(input_len=300, batch_size=8))
    assert official.batch_size == 8


def _quiet_run(**changes):
    return run(MovingAverageConfig(**changes), quiet=True, log=lambda *args: None)


@pytest.mark.slow
def test_defaults_stateful_converges_stateless_does_not():
    result = _quiet_run()
    assert result.stateful.converged and result.stateful.ratio <= 0.1
    assert not result.stateless.converged
    # the stateless model cannot beat the best memoryless predictor x[t] / 2
    assert result.stateless.test_mse >= 0.95 * result.baselines.window_optimum
    assert result.stateful.updates == result.stateless.updates == 800 * 10


@pytest.mark.slow
def test_lahead_two_both_converge():
    result = _quiet_run(lahead=2)
    assert result.stateful.converged and result.stateless.converged
    assert result.config.expect_stateless_converges


@pytest.mark.slow
def test_batch_32_official_layout_loses_the_advantage_streams_keep_it():
    # the same number of parameter updates as batch size 1 for 10 epochs: 32 x the epochs
    official = _quiet_run(batch_size=32, epochs=320)
    streams = _quiet_run(batch_size=32, epochs=320, layout="streams")
    assert official.stateful.updates == streams.stateful.updates == 800 * 10
    # official: the state comes from 32 steps back, so the model sits at the x[t]/2 floor
    assert not official.stateful.converged
    assert official.stateful.test_mse >= 0.9 * official.baselines.window_optimum
    assert streams.stateful.converged
    assert not streams.stateless.converged
    # cut into 32 test streams, each cold start costs what the stateless model always pays
    assert streams.stateful.test_mse_layout > 3 * streams.stateful.test_mse
    assert official.stateful.test_mse_layout is None


def test_run_prints_the_scripts_lines():
    lines = []
    run(
        MovingAverageConfig(input_len=60, epochs=2, lahead=3),
        quiet=True,
        log=lambda *args: lines.append(" ".join(str(a) for a in args)),
    )
    text = "\n".join(lines)
    assert "STATELESS LSTM WILL ALSO CONVERGE" in text
    for expected in ("Input shape: (60, 3)", "Output head:", "Input tail:",
                     "x_train.shape:  (48, 3, 1)", "Epoch 2 / 2 - loss:", "val_loss:"):
        assert expected in text
    assert text.count("Epoch 1 / 2") == 2  # both models


@pytest.mark.parametrize("threshold", [1e-9, 100.0])
def test_verdict_is_test_mse_against_threshold_times_the_mean_predictor(threshold):
    result = _quiet_run(input_len=100, epochs=1, threshold=threshold)
    y_test = result.data.y_test.astype(np.float64)
    mean_mse = float(np.mean((y_test - result.data.y_train.astype(np.float64).mean()) ** 2))
    for outcome in result.outcomes:
        test_mse = float(np.mean((y_test - outcome.predictions) ** 2))
        assert outcome.test_mse == pytest.approx(test_mse, rel=1e-12)
        assert outcome.ratio == pytest.approx(test_mse / mean_mse, rel=1e-9)
        assert outcome.converged == (test_mse <= threshold * mean_mse) == (threshold > 1)


def test_streams_validation_is_the_zero_state_layout_score():
    # Test stream i does not continue training stream i, so validation starts from zero
    # state; after the last epoch it is the in-layout score of the final weights.
    result = _quiet_run(input_len=200, epochs=2, batch_size=4, layout="streams")
    for outcome in result.outcomes:
        assert outcome.history.val_loss[-1] == pytest.approx(outcome.test_mse_layout, rel=1e-5)


def test_another_seed_reuses_every_compiled_program():
    # Compilation requests seen by JAX; programs found in this process' memory are not
    # requested again, so a run that reuses all of them requests none.
    import dataclasses

    from jax import monitoring

    from lstmlab.experiments.moving_average import MovingAverageConfig, run

    requests = []

    def count(name, **kwargs):
        if name == "/jax/compilation_cache/compile_requests_use_cache":
            requests.append(name)

    monitoring.register_event_listener(count)
    try:
        config = MovingAverageConfig(input_len=60, epochs=2, units=3)
        first = run(config, quiet=True, log=lambda *args: None)
        compiled = len(requests)
        second = run(dataclasses.replace(config, seed=7), quiet=True, log=lambda *args: None)
    finally:
        monitoring.unregister_event_listener(count)
    assert compiled > 0  # shapes no other test uses: the first run compiled (the count works)
    assert len(requests) == compiled  # the second seed compiled nothing
    assert not np.array_equal(first.stateful.predictions, second.stateful.predictions)
