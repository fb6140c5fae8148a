"""Training speed: the seed configuration against Keras 3 and PyTorch, large shapes against PyTorch.

The seed (Keras' ``lstm_stateful.py``): LSTM(20) + Dense(1), batch size 1, 800 one-step training
samples of the moving-average data (tsteps 2, lahead 1, input_len 1000), 10 epochs, stateful,
state reset after every epoch, Adam lr 1e-3. Every tool starts from the SAME initial weights
(lstmlab's Keras-default initialisation, copied in), runs in its own process, and is timed
per epoch; the first epoch's extra time is reported as compile/trace time.

    python bench/train_speed.py                 # ~1 minute: 3 epochs per Keras backend / torch
    python bench/train_speed.py --full          # all tools 10 epochs (test MSE as the seed)
    python bench/train_speed.py --tools lstmlab,torch
    python bench/train_speed.py --tools lstmlab,keras_tensorflow --full --skip-large \
        --keras-python /path/to/tf-venv/bin/python   # Keras from another environment

Also measured (issue 13), each in its own process:

* ``seed_style``: the seed's driver, ``LSTMModel.fit(epochs=1)`` then ``reset_states()``,
  repeated, against the bare compiled epoch in the same process (target: at most 1.2x).
* ``large``: the large configurations (25 batches x 256 streams x 128 units x 64 steps and
  50 x 1024 x 128 x 16; one feature, one output) trained by lstmlab (float32, and with
  ``matmul_dtype="bfloat16"``) and by PyTorch ``nn.LSTM`` with 1 and 2 threads, the same
  epoch (stateless batches, MSE, Adam), with the achieved GFLOP/s (the LSTM's matrix
  products: forward plus twice that for the backward) against this machine's float32
  matmul peak measured in the same process (targets: >= 1.0x PyTorch with 2 threads and
  >= 40% of the peak). ``--large-batches N`` times N batches per epoch instead (quick runs;
  the rates per batch are what is compared). ``--skip-large`` leaves them out.

The last line printed is one JSON object: tool -> {sec_per_epoch, compile_s, test_mse, ratio,
carries_state, ...}, "seed_style", "large" and "_meta" (machine, settings, targets, load
average). Nothing is asserted.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    emit_json,
    format_seconds,
    has_module,
    is_installed,
    machine_info,
    mark,
    package_version,
    run_child,
    steady_and_compile,
)

SCRIPT = Path(__file__).resolve()
UNITS = 20
# lstmlab.experiments.moving_average seeds the stateful model with config.seed + 1 = 1987.
INIT_SEED = 1987
# Keras 3 + TensorFlow reaches about this test MSE after the seed's 10 epochs on this data.
KERAS_TF_REFERENCE_MSE = 1.5e-5
# "Same or better" test MSE: within this factor of the other tool's.
MSE_TOLERANCE = 1.25
# Plain PyTorch stops after this many seconds of training (at least two epochs are run).
TORCH_BUDGET_S = float(os.environ.get("LSTMLAB_BENCH_TORCH_BUDGET_S", "30"))
TARGETS = {"keras_tensorflow": 300.0, "torch": 50.0}
KERAS_BACKENDS = ("jax", "tensorflow", "torch")
ALL_TOOLS = ("lstmlab", "lstmlab_edge", *(f"keras_{b}" for b in KERAS_BACKENDS), "torch")
BACKEND_MODULE = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


# --------------------------------------------------------------------------------------------
# Children: each runs one tool and prints its JSON line.
# --------------------------------------------------------------------------------------------
def _load(path: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    with np.load(path) as archive:
        data = {name: archive[name] for name in ("x_train", "y_train", "x_test", "y_test")}
        weights = [archive[f"weight_{i}"] for i in range(5)]
    return data, weights


EXTRA_TIMED_EPOCHS = 50


def _mse(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(
        np.mean(np.square(np.asarray(prediction, np.float64).reshape(target.shape) - target))
    )


def _summary(epoch_seconds: list[float], test_mse: float, **extra: Any) -> dict[str, Any]:
    sec_per_epoch, compile_s = steady_and_compile(epoch_seconds)
    return {
        "status": "ok",
        "sec_per_epoch": sec_per_epoch,
        "compile_s": compile_s,
        "first_epoch_s": epoch_seconds[0],
        "train_s": float(sum(epoch_seconds)),
        "epochs": len(epoch_seconds),
        "test_mse": test_mse,
        **extra,
    }


def child_lstmlab(data: dict[str, np.ndarray], weights: list[np.ndarray], epochs: int) -> dict:
    """The compiled epoch (``compiled_train_epoch``: one ``lax.scan`` over 800 batches)."""
    import jax

    from lstmlab.core.model import (
        LSTMConfig,
        from_keras_weights,
        init_params,
        init_state,
        reset_state,
    )
    from lstmlab.core.train import (
        TrainConfig,
        compiled_predict,
        compiled_train_epoch,
        init_train_state,
    )

    config = LSTMConfig(units=(UNITS,), timesteps=1, features=1, outputs=1, stateful=True)
    params = from_keras_weights(config, weights, init_params(config, INIT_SEED))
    train_config = TrainConfig(epochs=1, learning_rate=1e-3, reset="epoch")
    train_epoch = compiled_train_epoch(config, train_config)
    train_state = init_train_state(config, params, 1, train_config)
    # batch size 1: batch k is sample k, so the official layout is a reshape.
    x_batches = jax.numpy.asarray(data["x_train"].reshape(-1, 1, 1, 1))  # (800, 1, time, 1)
    y_batches = jax.numpy.asarray(data["y_train"].reshape(-1, 1, 1))  # (800, 1, outputs)
    x_test = jax.numpy.asarray(data["x_test"].reshape(-1, 1, 1, 1))  # (200, 1, time, 1)
    predict_batches = compiled_predict(config)
    epoch_seconds, test_mse_by_epoch = [], []
    for _ in range(epochs):
        started = time.perf_counter()
        train_state, losses = train_epoch(train_state, x_batches, y_batches)
        jax.block_until_ready(losses)
        epoch_seconds.append(time.perf_counter() - started)
        train_state = train_state._replace(rnn_state=reset_state(train_state.rnn_state))
        # Untimed: the test MSE after every epoch, to compare with tools run for fewer epochs.
        predictions, _ = predict_batches(train_state.params, init_state(config, 1), x_test)
        test_mse_by_epoch.append(_mse(np.asarray(predictions), data["y_test"]))
    summary = _summary(
        epoch_seconds,
        test_mse_by_epoch[-1],
        test_mse_by_epoch=test_mse_by_epoch,
        carries_state=True,
        carries_state_predict=True,
        version=package_version("lstmlab"),
        jax=package_version("jax"),
    )
    # An epoch takes about 2 ms, so nine timings are at the mercy of one scheduler hiccup on
    # a shared 2-core machine: time EXTRA_TIMED_EPOCHS more (after the test MSE is taken) and
    # report the median of all steady-state epochs.
    extra_seconds = []
    for _ in range(EXTRA_TIMED_EPOCHS):
        started = time.perf_counter()
        train_state, losses = train_epoch(train_state, x_batches, y_batches)
        jax.block_until_ready(losses)
        extra_seconds.append(time.perf_counter() - started)
        train_state = train_state._replace(rnn_state=reset_state(train_state.rnn_state))
    steady = epoch_seconds[1:] + extra_seconds
    summary["sec_per_epoch"] = float(np.median(steady))
    summary["timed_epochs"] = len(steady)
    return summary


SEED_STYLE_ROUNDS = 60


def child_lstmlab_edge(data: dict[str, np.ndarray], weights: list[np.ndarray], epochs: int) -> dict:
    """The edge object, driven exactly as the seed drives Keras: fit(epochs=1), reset, x10.

    Then the seed-style driver against the bare compiled epoch (``compiled_train_epoch`` and
    the reset), alternating one of each for ``SEED_STYLE_ROUNDS`` rounds in this process, so
    that both see the same load: ``seed_style_ratio`` is the ratio of the medians.
    """
    import jax

    from lstmlab import LSTMModel
    from lstmlab.core.model import LSTMConfig, from_keras_weights, init_params, reset_state
    from lstmlab.core.train import TrainConfig, compiled_train_epoch, init_train_state

    model = LSTMModel(units=(UNITS,), stateful=True, batch_size=1, seed=INIT_SEED)
    model.set_weights(weights)
    epoch_seconds = []

    def seed_style_epoch() -> None:
        model.fit(
            data["x_train"], data["y_train"], epochs=1, batch_size=1, shuffle=False, quiet=True
        )
        model.reset_states()

    for _ in range(epochs):
        started = time.perf_counter()
        seed_style_epoch()
        epoch_seconds.append(time.perf_counter() - started)
    test_mse = _mse(model.predict(data["x_test"]), data["y_test"])

    config = LSTMConfig(units=(UNITS,), timesteps=1, features=1, outputs=1, stateful=True)
    params = from_keras_weights(config, weights, init_params(config, INIT_SEED))
    train_config = TrainConfig(epochs=1, learning_rate=1e-3, reset="epoch")
    train_epoch = compiled_train_epoch(config, train_config)
    bare_state = init_train_state(config, params, 1, train_config)
    x_batches = jax.numpy.asarray(data["x_train"].reshape(-1, 1, 1, 1))  # (800, 1, time, 1)
    y_batches = jax.numpy.asarray(data["y_train"].reshape(-1, 1, 1))  # (800, 1, outputs)

    def bare_epoch() -> None:
        nonlocal bare_state
        bare_state, losses = train_epoch(bare_state, x_batches, y_batches)
        jax.block_until_ready(losses)
        bare_state = bare_state._replace(rnn_state=reset_state(bare_state.rnn_state))

    bare_epoch()
    bare_seconds, driver_seconds = [], []
    for _ in range(SEED_STYLE_ROUNDS):
        started = time.perf_counter()
        bare_epoch()
        bare_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        seed_style_epoch()
        driver_seconds.append(time.perf_counter() - started)
    bare, driver = float(np.median(bare_seconds)), float(np.median(driver_seconds))
    return _summary(
        epoch_seconds,
        test_mse,
        carries_state=True,
        carries_state_predict=True,
        version=package_version("lstmlab"),
        seed_style_s=driver,
        bare_epoch_s=bare,
        seed_style_ratio=driver / bare,
        seed_style_rounds=SEED_STYLE_ROUNDS,
    )


def _keras_lstm_class(keras: Any) -> tuple[type, str | None]:
    """Keras' LSTM, or on the torch backend a subclass that works around an autograd error.

    Keras 3.15 with torch: the stateful LSTM feeds its state variable's own tensor into the
    graph and then assigns the new state into it in place, so ``loss.backward()`` fails with
    "one of the variables needed for gradient computation has been modified by an inplace
    operation". Passing copies of the state variables as the initial state avoids it; the
    layer still writes its final state back to the variables (``RNN.call``), so the state is
    carried exactly as intended.
    """
    if keras.backend.backend() != "torch":
        return keras.layers.LSTM, None

    class StateCopyLSTM(keras.layers.LSTM):
        def call(self, sequences, initial_state=None, mask=None, training=False):
            if self.stateful and initial_state is None and self.states is not None:
                initial_state = [keras.ops.copy(v.value) for v in self.states]
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )

    return StateCopyLSTM, "LSTM subclass passes copies of the state variables (autograd fix)"


def _keras_model(keras: Any, lstm_class: type, weights: list[np.ndarray]) -> Any:
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(1, 1, 1)),
            lstm_class(UNITS, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    model.set_weights(weights)
    return model


def _reset_keras_states(model: Any) -> None:
    # Keras 3's Sequential has no reset_states(); the seed's model.reset_states() is per layer.
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def _state_norm(model: Any) -> float:
    import keras

    layer = model.layers[0]
    return float(sum(np.abs(keras.ops.convert_to_numpy(v.value)).sum() for v in layer.states))


def child_keras(data: dict[str, np.ndarray], weights: list[np.ndarray], epochs: int) -> dict:
    """Keras 3 on the backend named by KERAS_BACKEND: the seed's loop, verbose=0."""
    import keras

    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    lstm_class, workaround = _keras_lstm_class(keras)

    # Does the backend carry the state? A fresh model, one train_on_batch: the LSTM's state
    # variables hold the new state only if the backend writes it back inside training.
    probe = _keras_model(keras, lstm_class, weights)
    probe.train_on_batch(data["x_train"][:1], data["y_train"][:1])
    carries_state = _state_norm(probe) > 0.0
    # ... and inside predict: the same input twice from reset state gives two outputs.
    _reset_keras_states(probe)
    first = probe.predict(data["x_train"][1:2], batch_size=1, verbose=0)
    second = probe.predict(data["x_train"][1:2], batch_size=1, verbose=0)
    carries_state_predict = bool(np.any(first != second))
    # ... and inside an eager call (model(x)): Keras' stateless-call machinery is not used.
    _reset_keras_states(probe)
    eager_first = keras.ops.convert_to_numpy(probe(data["x_train"][1:2]))
    eager_second = keras.ops.convert_to_numpy(probe(data["x_train"][1:2]))
    carries_state_call = bool(np.any(eager_first != eager_second))
    del probe

    model = _keras_model(keras, lstm_class, weights)
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(
            data["x_train"], data["y_train"], batch_size=1, epochs=1, shuffle=False, verbose=0
        )
        epoch_seconds.append(time.perf_counter() - started)
        _reset_keras_states(model)
    predictions = model.predict(data["x_test"], batch_size=1, verbose=0)
    _reset_keras_states(model)
    return _summary(
        epoch_seconds,
        _mse(predictions, data["y_test"]),
        carries_state=carries_state,
        carries_state_predict=carries_state_predict,
        carries_state_call=carries_state_call,
        backend=backend,
        version=package_version("keras"),
        backend_version=package_version(
            {"tensorflow": "tensorflow-cpu", "torch": "torch", "jax": "jax"}[backend]
        )
        or package_version("tensorflow"),
        workaround=workaround,
    )


def child_torch(data: dict[str, np.ndarray], weights: list[np.ndarray], epochs: int) -> dict:
    """Plain PyTorch: nn.LSTM + nn.Linear, per-batch loop, state detached between batches."""
    import torch
    from torch import nn

    threads = int(os.environ.get("LSTMLAB_BENCH_TORCH_THREADS", "0"))
    if threads > 0:
        torch.set_num_threads(threads)

    torch.manual_seed(0)
    lstm = nn.LSTM(1, UNITS, batch_first=True)
    head = nn.Linear(UNITS, 1)
    kernel, recurrent_kernel, bias, head_kernel, head_bias = weights
    with torch.no_grad():
        # torch stacks gates [i, f, g, o] along rows, Keras [i, f, c, o] along columns.
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))  # (4u, in)
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T.copy()))  # (4u, u)
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        lstm.bias_hh_l0.zero_()  # Keras has one bias; torch adds two
        head.weight.copy_(torch.from_numpy(head_kernel.T.copy()))  # (1, u)
        head.bias.copy_(torch.from_numpy(head_bias))
    parameters = [*lstm.parameters(), *head.parameters()]
    # eps as Keras' 1e-7 (torch adds it to sqrt(v_hat), Keras to sqrt(v): not identical).
    optimizer = torch.optim.Adam(parameters, lr=1e-3, eps=1e-7)
    loss_fn = nn.MSELoss()
    x_train = torch.from_numpy(data["x_train"])  # (800, time, 1)
    y_train = torch.from_numpy(data["y_train"])  # (800, 1)
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        state = None  # zero state: the reset at every epoch
        for index in range(x_train.shape[0]):
            output, (h, c) = lstm(x_train[index : index + 1], state)
            loss = loss_fn(head(output[:, -1]), y_train[index : index + 1])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state = (h.detach(), c.detach())
        epoch_seconds.append(time.perf_counter() - started)
        if len(epoch_seconds) >= 2 and sum(epoch_seconds) > TORCH_BUDGET_S:
            break  # a loaded machine starves torch's thread pool; two epochs give a steady state
    x_test = torch.from_numpy(data["x_test"])
    predictions = []
    with torch.no_grad():
        state = None
        for index in range(x_test.shape[0]):
            output, state = lstm(x_test[index : index + 1], state)
            predictions.append(head(output[:, -1]).numpy())
    return _summary(
        epoch_seconds,
        _mse(np.concatenate(predictions), data["y_test"]),
        carries_state=True,
        carries_state_predict=True,
        version=package_version("torch"),
        threads=torch.get_num_threads(),
    )


# --------------------------------------------------------------------------------------------
# Large shapes (issue 13): lstmlab against PyTorch nn.LSTM, and the machine's matmul peak.
# --------------------------------------------------------------------------------------------
# (batches per epoch, streams per batch, units, steps)
LARGE_CONFIGS = ((25, 256, 128, 64), (50, 1024, 128, 16))
LARGE_TARGETS = {"vs_torch_2_threads": 1.0, "peak_fraction": 0.4}
LARGE_TIMED_EPOCHS = 2


def large_data(shape: Sequence[int], batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Random batches ``(batches, streams, steps, 1)`` and targets (a mean of the last steps)."""
    _, streams, _, steps = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches, streams, steps, 1)).astype(np.float32)
    y = (x[:, :, -4:, 0].mean(axis=2, keepdims=True) * 0.5).astype(np.float32)
    return x, y  # (batches, streams, steps, 1), (batches, streams, 1)


def large_flops(shape: Sequence[int], batches: int) -> float:
    """Floating-point operations of the LSTM's matrix products in one training epoch.

    Per step: the input projection ``2 * streams * features * 4u`` and the recurrent product
    ``2 * streams * u * 4u``; the backward pass does each twice (weights and inputs).
    """
    _, streams, units, steps = shape
    forward = 2 * streams * steps * (1 * 4 * units + units * 4 * units) + 2 * streams * units
    return 3.0 * forward * batches


def matmul_peak() -> float:
    """This machine's float32 matmul rate in GFLOP/s: the best of a few 2048^2 products (JAX)."""
    import jax
    import jax.numpy as jnp

    size = 2048
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    product = jax.jit(lambda m: m @ m)
    jax.block_until_ready(product(a))
    best = float("inf")
    for _ in range(8):
        started = time.perf_counter()
        jax.block_until_ready(product(a))
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def child_large_lstmlab(shape: Sequence[int], batches: int, matmul_dtype: str) -> dict:
    """lstmlab's compiled epoch at a large shape (stateless batches, Keras-form Adam)."""
    import jax

    from lstmlab.core.layers import time_unroll
    from lstmlab.core.model import LSTMConfig, init_params
    from lstmlab.core.train import TrainConfig, compiled_train_epoch, init_train_state

    _, streams, units, steps = shape
    config = LSTMConfig(units=(units,), timesteps=steps, features=1, outputs=1, stateful=False)
    train_config = TrainConfig(epochs=1, learning_rate=1e-3, matmul_dtype=matmul_dtype)
    train_epoch = compiled_train_epoch(config, train_config)
    state = init_train_state(config, init_params(config, 0), streams, train_config)
    x, y = (jax.numpy.asarray(a) for a in large_data(shape, batches))
    load_before = os.getloadavg()[0]
    peak_before = matmul_peak()
    epoch_seconds = []
    for _ in range(1 + LARGE_TIMED_EPOCHS):
        started = time.perf_counter()
        state, losses = train_epoch(state, x, y)
        jax.block_until_ready(losses)
        epoch_seconds.append(time.perf_counter() - started)
    peak = max(peak_before, matmul_peak())
    steady = float(np.median(epoch_seconds[1:]))
    gflops = large_flops(shape, batches) / steady / 1e9
    return {
        "status": "ok",
        "sec_per_epoch": steady,
        "compile_s": epoch_seconds[0] - steady,
        "gflops": gflops,
        "peak_gflops": peak,
        "peak_fraction": gflops / peak,
        "last_loss": float(np.mean(np.asarray(losses))),
        "unroll": time_unroll(streams, units, steps),
        "matmul_dtype": matmul_dtype,
        # A loaded 2-core machine slows everything (torch's 2 threads most): repeat if > 1.5.
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def child_large_torch(shape: Sequence[int], batches: int, threads: int) -> dict:
    """PyTorch nn.LSTM + nn.Linear at a large shape, ``threads`` intra-op threads."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    _, _, units, _ = shape
    lstm = nn.LSTM(1, units, batch_first=True)
    head = nn.Linear(units, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3, eps=1e-7)
    loss_fn = nn.MSELoss()
    x, y = (torch.from_numpy(a) for a in large_data(shape, batches))
    load_before = os.getloadavg()[0]
    epoch_seconds = []
    for _ in range(1 + LARGE_TIMED_EPOCHS):
        started = time.perf_counter()
        for index in range(batches):
            output, _ = lstm(x[index])
            loss = loss_fn(head(output[:, -1]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
    steady = float(np.median(epoch_seconds[1:]))
    return {
        "status": "ok",
        "sec_per_epoch": steady,
        "first_epoch_s": epoch_seconds[0],
        "gflops": large_flops(shape, batches) / steady / 1e9,
        "threads": torch.get_num_threads(),
        "last_loss": float(loss),
        "version": package_version("torch"),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def measure_large(args: argparse.Namespace) -> dict[str, Any]:
    """Every large configuration: lstmlab (float32, bfloat16) and torch (1, 2 threads)."""
    results: dict[str, Any] = {}
    for shape in LARGE_CONFIGS:
        batches = args.large_batches or shape[0]
        name = "x".join(str(v) for v in shape)
        base = [str(SCRIPT), "--large-shape", ",".join(map(str, shape)),
                "--large-batches", str(batches)]
        entry: dict[str, Any] = {"shape": list(shape), "batches_timed": batches}
        for dtype in ("float32", "bfloat16"):
            print(f"running large {name} lstmlab {dtype} ...", file=sys.stderr, flush=True)
            entry[f"lstmlab_{dtype}"] = run_child(
                [*base, "--child", "large_lstmlab", "--matmul-dtype", dtype],
                timeout=args.timeout,
            )
        for threads in (1, 2):
            key = f"torch_{threads}_threads"
            if not is_installed("torch"):
                entry[key] = {"status": "not installed", "error": "torch is not installed"}
                continue
            print(f"running large {name} torch {threads} threads ...", file=sys.stderr, flush=True)
            entry[key] = run_child(
                [*base, "--child", "large_torch", "--torch-threads", str(threads)],
                env={"OMP_NUM_THREADS": str(threads)},
                timeout=args.timeout,
            )
        ours = entry["lstmlab_float32"]
        torch_2 = entry["torch_2_threads"]
        if ours.get("status") == "ok":
            entry["peak_fraction"] = ours["peak_fraction"]
            entry["passes_peak"] = ours["peak_fraction"] >= LARGE_TARGETS["peak_fraction"]
            bf16 = entry["lstmlab_bfloat16"]
            if bf16.get("status") == "ok":
                entry["bfloat16_speedup"] = ours["sec_per_epoch"] / bf16["sec_per_epoch"]
            for threads in (1, 2):
                other = entry[f"torch_{threads}_threads"]
                if other.get("status") == "ok":
                    entry[f"vs_torch_{threads}_threads"] = (
                        other["sec_per_epoch"] / ours["sec_per_epoch"]
                    )
                    # The same matmul peak (lstmlab's child measured it on this machine).
                    entry[f"torch_{threads}_threads_peak_fraction"] = (
                        other["gflops"] / ours["peak_gflops"]
                    )
            if torch_2.get("status") == "ok":
                entry["passes_torch"] = (
                    entry["vs_torch_2_threads"] >= LARGE_TARGETS["vs_torch_2_threads"]
                )
        results[name] = entry
    return results


def print_large(large: dict[str, Any]) -> None:
    """One line per large configuration."""
    for name, entry in large.items():
        ours = entry.get("lstmlab_float32", {})
        if ours.get("status") != "ok":
            print(f"large {name}: lstmlab {ours.get('status')}: {ours.get('error', '')}")
            continue
        parts = [
            f"large {name} ({entry['batches_timed']} batches): lstmlab "
            f"{format_seconds(ours['sec_per_epoch'])}/epoch, {ours['gflops']:.0f} GFLOP/s = "
            f"{100 * ours['peak_fraction']:.0f}% of the {ours['peak_gflops']:.0f} GFLOP/s "
            f"matmul peak {mark(entry.get('passes_peak'))} (unroll {ours['unroll']}, load "
            f"{ours['load_before']:.2f} / {ours['load_after']:.2f})"
        ]
        if "bfloat16_speedup" in entry:
            parts.append(f"bfloat16 {entry['bfloat16_speedup']:.2f}x float32's speed")
        for threads in (1, 2):
            ratio = entry.get(f"vs_torch_{threads}_threads")
            if ratio is not None:
                fraction = entry[f"torch_{threads}_threads_peak_fraction"]
                parts.append(
                    f"{ratio:.2f}x torch with {threads} thread(s) (torch: "
                    f"{100 * fraction:.0f}% of the peak)"
                )
        if "passes_torch" in entry:
            parts.append(f"target >= 1.0x torch (2 threads) {mark(entry['passes_torch'])}")
        print("; ".join(parts))


LARGE_CHILDREN = ("large_lstmlab", "large_torch")

CHILDREN: dict[str, Callable[[dict, list, int], dict]] = {
    "lstmlab": child_lstmlab,
    "lstmlab_edge": child_lstmlab_edge,
    "keras": child_keras,
    "torch": child_torch,
}


# --------------------------------------------------------------------------------------------
# Parent: data, children, table, JSON.
# --------------------------------------------------------------------------------------------
def write_inputs(path: Path) -> dict[str, Any]:
    """Write the seed's data and the shared initial weights to ``path`` (an .npz)."""
    from lstmlab.core.model import LSTMConfig, init_params, to_keras_weights
    from lstmlab.experiments.moving_average import MovingAverageConfig, make_data

    data = make_data(MovingAverageConfig())
    config = LSTMConfig(units=(UNITS,), timesteps=1, features=1, outputs=1, stateful=True)
    weights = to_keras_weights(config, init_params(config, INIT_SEED))
    np.savez(
        path,
        x_train=data.x_train,
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        **{f"weight_{i}": w for i, w in enumerate(weights)},
    )
    return {
        "x_train": list(data.x_train.shape),
        "x_test": list(data.x_test.shape),
        "mean_predictor_mse": float(np.mean(np.square(data.y_test - data.y_train.mean()))),
    }


def measure(tool: str, inputs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one tool in its own process (or report it as not installed)."""
    if tool.startswith("keras_"):
        backend = tool.removeprefix("keras_")
        where = "" if args.keras_python == sys.executable else f" in {args.keras_python}"
        for module in ("keras", BACKEND_MODULE[backend]):
            if not has_module(module, args.keras_python):
                return {"status": "not installed", "error": f"{module} is not installed{where}"}
        epochs = args.epochs if args.full else args.keras_epochs
        # The child is this script run by the Keras interpreter: it needs only NumPy there.
        return run_child(
            [str(SCRIPT), "--child", "keras", "--inputs", str(inputs), "--epochs", str(epochs)],
            env={"KERAS_BACKEND": backend},
            timeout=args.timeout,
            python=args.keras_python,
        )
    if tool == "torch" and not is_installed("torch"):
        return {"status": "not installed", "error": "torch is not installed"}
    epochs = args.torch_epochs if tool == "torch" and not args.full else args.epochs
    return run_child(
        [str(SCRIPT), "--child", tool, "--inputs", str(inputs), "--epochs", str(epochs)],
        env={"LSTMLAB_BENCH_TORCH_THREADS": str(args.torch_threads)},
        timeout=args.timeout,
    )


def _passes(results: dict[str, dict], tool: str, target: float) -> dict[str, Any]:
    """Speed and MSE marks; the MSEs compared are both taken after the other tool's epochs."""
    base, other = results.get("lstmlab", {}), results.get(tool, {})
    if base.get("status") != "ok" or other.get("status") != "ok":
        return {"speed": None, "mse": None, "epochs": None, "lstmlab_mse": None, "tool_mse": None}
    by_epoch = base["test_mse_by_epoch"]
    epochs = min(other["epochs"], len(by_epoch))
    lstmlab_mse = by_epoch[epochs - 1]
    return {
        "speed": other["ratio"] >= target,
        "mse": lstmlab_mse <= MSE_TOLERANCE * other["test_mse"],
        "epochs": epochs,
        "lstmlab_mse": lstmlab_mse,
        "tool_mse": other["test_mse"],
    }


SEED_STYLE_TARGET = 1.2


def _seed_style(edge: dict[str, Any]) -> dict[str, Any]:
    """The seed-style driver against the bare epoch, from the lstmlab_edge child."""
    if edge.get("status") != "ok" or "seed_style_ratio" not in edge:
        return {}
    return {
        "seed_style_s": edge["seed_style_s"],
        "bare_epoch_s": edge["bare_epoch_s"],
        "ratio": edge["seed_style_ratio"],
        "passes": edge["seed_style_ratio"] <= SEED_STYLE_TARGET,
        "rounds": edge["seed_style_rounds"],
    }


def print_report(results: dict[str, dict], args: argparse.Namespace, meta: dict) -> None:
    """The rich table and the target marks."""
    from rich.console import Console
    from rich.table import Table

    # Not a terminal (make bench, a pipe): rich would fall back to 80 columns and wrap the table.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    table = Table(
        title=f"Seed training speed ({meta['machine']['cpu']}, {meta['machine']['cores']} cores)"
    )
    for column in (
        "tool",
        "epochs",
        "s/epoch",
        "compile",
        "train s",
        "test MSE",
        "ratio",
        "state in fit / predict",
    ):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for tool, result in results.items():
        if result.get("status") != "ok":
            table.add_row(tool, "", "", "", "", "", "", f"[yellow]{result.get('status')}[/yellow]")
            continue
        label = "" if result["epochs"] >= args.epochs else f" (after {result['epochs']} ep.)"
        carries = "yes" if result["carries_state"] else "[red]NO[/red]"
        carries_predict = "yes" if result["carries_state_predict"] else "[red]NO[/red]"
        table.add_row(
            tool,
            str(result["epochs"]),
            format_seconds(result["sec_per_epoch"]),
            format_seconds(result["compile_s"]),
            f"{result['train_s']:.3g}",
            f"{result['test_mse']:.3e}{label}",
            f"{result['ratio']:.0f}×" if result.get("ratio") else "–",
            f"{carries} / {carries_predict}",
        )
    console.print(table)
    for tool, result in results.items():
        if result.get("status") != "ok":
            console.print(
                f"[yellow]{tool}[/yellow]: {result.get('status')}: {result.get('error', '')}",
                markup=False,
            )
        elif result.get("workaround"):
            console.print(f"{tool}: {result['workaround']}", markup=False)
    torch_threads = results.get("torch", {}).get("threads")
    if torch_threads:
        console.print(f"torch.get_num_threads() = {torch_threads} (left at its default)")
    console.print(f"mean-predictor test MSE (no skill) = {meta['data']['mean_predictor_mse']:.3e}")
    console.print(
        f"load average (1 min) before / after: {meta['load_before']:.2f} / "
        f"{meta['load_after']:.2f} on {meta['machine']['cores']} cores"
    )
    for tool, target in TARGETS.items():
        passes = meta["targets"][tool]
        ratio = results.get(tool, {}).get("ratio")
        ratio_text = f"{ratio:.0f}×" if ratio else "n/a"
        if passes["epochs"] is None:
            mse_text = "n/a"
        else:
            mse_text = (
                f"after {passes['epochs']} epochs {passes['lstmlab_mse']:.3e} vs "
                f"{passes['tool_mse']:.3e}"
            )
        console.print(
            f"target: lstmlab ≥ {target:.0f}× faster per epoch than {tool}: {ratio_text} "
            f"{mark(passes['speed'])}; test MSE same or better (≤ {MSE_TOLERANCE}×), "
            f"{mse_text}: {mark(passes['mse'])}"
        )
    console.print(
        f"(Keras 3 + TensorFlow reaches about {KERAS_TF_REFERENCE_MSE:.1e} after the "
        "seed's 10 epochs on this data; run --full to measure it.)"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags (``--child`` and ``--inputs`` are for the script's own children)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="lstmlab epochs (seed: 10)")
    parser.add_argument(
        "--keras-epochs",
        type=int,
        default=3,
        help="Keras epochs timed per backend unless --full (default 3)",
    )
    parser.add_argument(
        "--torch-epochs",
        type=int,
        default=3,
        help="plain PyTorch epochs timed unless --full (default 3; 2-6 s each on 2 cores)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads for plain PyTorch (default 0: untouched)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="Keras and PyTorch run all --epochs epochs (test MSE after the seed's 10)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(ALL_TOOLS),
        help=f"comma-separated subset of {','.join(ALL_TOOLS)}",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per child")
    parser.add_argument(
        "--keras-python",
        default=sys.executable,
        help="interpreter that runs the Keras children (e.g. a TensorFlow virtual "
        "environment's bin/python; default: this one)",
    )
    parser.add_argument(
        "--large-batches",
        type=int,
        default=0,
        help="batches per epoch timed at the large shapes (default 0: the full 25 and 50)",
    )
    parser.add_argument(
        "--skip-large", action="store_true", help="leave out the large configurations"
    )
    parser.add_argument(
        "--child", choices=sorted([*CHILDREN, *LARGE_CHILDREN]), help=argparse.SUPPRESS
    )
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--large-shape", help=argparse.SUPPRESS)
    parser.add_argument("--matmul-dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = sorted(set(tools) - set(ALL_TOOLS))
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {', '.join(ALL_TOOLS)}")
    if "lstmlab" not in tools:
        tools.insert(0, "lstmlab")  # every ratio is relative to it
    args.tools = tools
    if args.large_batches < 0:
        parser.error(f"--large-batches must be >= 0, got {args.large_batches}")
    for name in ("epochs", "keras_epochs", "torch_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one tool of it)."""
    args = parse_args(argv)
    if args.child in LARGE_CHILDREN:
        shape = tuple(int(v) for v in args.large_shape.split(","))
        batches = args.large_batches or shape[0]
        if args.child == "large_lstmlab":
            emit_json(child_large_lstmlab(shape, batches, args.matmul_dtype))
        else:
            emit_json(child_large_torch(shape, batches, args.torch_threads or 1))
        return 0
    if args.child:
        data, weights = _load(args.inputs)
        emit_json(CHILDREN[args.child](data, weights, args.epochs))
        return 0
    results: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lstmlab-bench-") as folder:
        inputs = Path(folder) / "inputs.npz"
        data_shapes = write_inputs(inputs)
        for tool in args.tools:
            print(f"running {tool} ...", file=sys.stderr, flush=True)
            results[tool] = measure(tool, inputs, args)
    large = {} if args.skip_large else measure_large(args)
    base = results["lstmlab"].get("sec_per_epoch")
    for result in results.values():
        if result.get("status") == "ok" and base:
            result["ratio"] = result["sec_per_epoch"] / base
    meta = {
        "benchmark": "train_speed",
        "machine": machine_info(),
        "data": data_shapes,
        "settings": {
            "epochs": args.epochs,
            "keras_epochs": args.epochs if args.full else args.keras_epochs,
            "torch_epochs": args.epochs if args.full else args.torch_epochs,
            "full": args.full,
            "init_seed": INIT_SEED,
            "torch_threads": args.torch_threads or "default",
            "keras_python": args.keras_python,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "targets": {tool: _passes(results, tool, target) for tool, target in TARGETS.items()},
        "seed_style_target": SEED_STYLE_TARGET,
        "large_targets": LARGE_TARGETS,
        # Other work on the machine slows the per-step loops most (torch's thread pool).
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    print_report(results, args, meta)
    seed_style = _seed_style(results.get("lstmlab_edge", {}))
    if seed_style:
        print(
            f"seed-style driver (fit(epochs=1) + reset_states, repeated): "
            f"{format_seconds(seed_style['seed_style_s'])} per epoch against the bare compiled "
            f"epoch's {format_seconds(seed_style['bare_epoch_s'])} in the same process: "
            f"{seed_style['ratio']:.2f}x (target <= {SEED_STYLE_TARGET}x) "
            f"{mark(seed_style['passes'])}"
        )
    print_large(large)
    emit_json({**results, "seed_style": seed_style, "large": large, "_meta": meta})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
