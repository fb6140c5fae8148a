"""Speed of ``lstmlab compare --preset airline-classic``: six models x 5 seeds, and Keras 3.

Three measurements, each in its own fresh process (so no compiled program is reused between
them and Keras' imports cannot slow lstmlab down):

* ``ours-all``: the whole preset (persistence, seasonal naive, MLP, stateless, stateful and
  stacked stateful LSTMs, 5 seeds each, the published epochs), compilation included; target
  under 30 s on a 2-core CPU;
* ``ours-one``: one model and one seed of it (the stateless LSTM(4), window 1, 100 epochs,
  batch 1, shuffled), compilation included;
* ``keras-one``: the same training in Keras 3 (JAX backend by default): the same scaled
  windows, the same initial weights as ``ours-one``, ``fit(epochs=100, batch_size=1,
  shuffle=True)``.

    python bench/compare_speed.py [--data ../shared/data/airline_passengers.csv]
    python bench/compare_speed.py --keras-backend tensorflow

The last line printed is one JSON object. Nothing is asserted.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import emit_json, format_seconds, machine_info, mark, run_child

SCRIPT = Path(__file__).resolve()
TARGET_SECONDS = 30.0
ONE_MODEL = "stateless"


def _data_path(argument: str | None) -> Path:
    if argument:
        return Path(argument)
    folder = Path(os.environ.get("LSTMLAB_DATA", SCRIPT.parent.parent.parent / "shared" / "data"))
    return folder / "airline_passengers.csv"


def _child_ours(path: Path, one: bool) -> dict:
    started = time.perf_counter()
    import dataclasses

    from lstmlab.experiments import compare

    imported = time.perf_counter()
    series = compare.load_preset_series("airline-classic", path)
    config = compare.PRESETS["airline-classic"]
    if one:
        spec = next(m for m in config.models if m.name == ONE_MODEL)
        config = dataclasses.replace(config, models=(spec,), seeds=1)
    run_started = time.perf_counter()
    result = compare.run(config, series, quiet=True)
    finished = time.perf_counter()
    # Again in the same process: the compiled programs are reused, so this is the training
    # and forecasting time without compilation.
    warm_started = time.perf_counter()
    compare.run(config, series, quiet=True)
    warm = time.perf_counter() - warm_started
    return {
        "status": "ok",
        "seconds": finished - run_started,
        "warm_seconds": warm,
        "import_seconds": imported - started,
        "per_model_seconds": {o.name: o.seconds for o in result.outcomes},
        "rmse": {o.name: o.mean("rmse") for o in result.outcomes},
        "rmse_std": {o.name: o.std("rmse") for o in result.outcomes},
    }


def _child_keras(path: Path, backend: str) -> dict:
    os.environ["KERAS_BACKEND"] = backend
    import jax
    import numpy as np

    from lstmlab.core.model import init_params, to_keras_weights
    from lstmlab.experiments import compare

    series = compare.load_preset_series("airline-classic", path)
    config = compare.PRESETS["airline-classic"]
    spec = next(m for m in config.models if m.name == ONE_MODEL)
    data = compare.prepare_data(config, series.target_values())
    inputs, target_scaler = data.scaling(spec.scaler)
    targets = compare._training_targets(data.fold, config, spec.window, data.n_train)
    x, y = compare._samples(inputs, targets, spec.window, config.outputs)
    x, y = x[:, 0], y[:, 0]  # one series: (samples, window, 1), (samples, 1)
    model_config = spec.model_config(1, 1)
    # The initial weights of seed 0 in ``ours-one`` (``lstmlab.pipeline.initial_states``: seed
    # s from jax.random.key(s)). The shuffling orders differ.
    weights = to_keras_weights(model_config, init_params(model_config, jax.random.key(0)))
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((spec.window, 1)), keras.layers.LSTM(spec.units[0]), keras.layers.Dense(1)]
    )
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam(1e-3))
    model.set_weights(weights)
    model.fit(x, y, epochs=spec.epochs, batch_size=1, shuffle=True, verbose=0)
    trained = time.perf_counter()
    windows = compare._windows(inputs, data.origins, spec.window)[:, 0]
    scaled = model.predict(windows, batch_size=len(windows), verbose=0)[:, 0]
    forecast = scaled * np.asarray(target_scaler.scale)[0] + np.asarray(target_scaler.offset)[0]
    actual = data.targets[data.origins, 0]
    return {
        "status": "ok",
        "seconds": trained - started,
        "rmse": float(np.sqrt(np.mean((forecast - actual) ** 2))),
        "backend": backend,
        "keras": keras.__version__,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="airline_passengers.csv (default: the shared data)")
    parser.add_argument("--keras-backend", default="jax", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--child", choices=("ours-all", "ours-one", "keras-one"))
    args = parser.parse_args()
    path = _data_path(args.data)
    if args.child:
        if args.child == "keras-one":
            record = _child_keras(path, args.keras_backend)
        else:
            record = _child_ours(path, args.child == "ours-one")
        print(json.dumps(record))
        return 0
    if not path.is_file():
        print(f"airline data not found at {path}; pass --data or set LSTMLAB_DATA")
        emit_json({"status": "skipped", "reason": f"no data at {path}"})
        return 0
    from rich.console import Console

    console = Console()
    base = [str(SCRIPT), "--data", str(path)]
    started = time.perf_counter()
    ours_all = run_child([*base, "--child", "ours-all"])
    ours_all_wall = time.perf_counter() - started
    ours_one = run_child([*base, "--child", "ours-one"])
    keras_one = (
        {"status": "skipped"}
        if args.skip_keras
        else run_child(
            [*base, "--child", "keras-one", "--keras-backend", args.keras_backend],
            env={"KERAS_BACKEND": args.keras_backend},
        )
    )
    info = machine_info()
    console.print(
        f"[bold]compare --preset airline-classic[/bold] on {info['cpu']} ({info['cores']} cores)"
    )
    passed = None
    if ours_all.get("status") == "ok":
        passed = ours_all["seconds"] < TARGET_SECONDS
        console.print(
            f"  six models x 5 seeds: {format_seconds(ours_all['seconds'])} "
            f"({format_seconds(ours_all['warm_seconds'])} once compiled) "
            f"(process with imports {format_seconds(ours_all_wall)}), target < "
            f"{TARGET_SECONDS:.0f} s {mark(passed)}"
        )
        for name, seconds in ours_all["per_model_seconds"].items():
            console.print(
                f"    {name:15s} {format_seconds(seconds):>8s}  RMSE {ours_all['rmse'][name]:.1f}"
                f" ± {ours_all['rmse_std'][name]:.1f}"
            )
    else:
        console.print(f"  lstmlab failed: {ours_all.get('error')}")
    if ours_one.get("status") == "ok":
        console.print(
            f"  one model, one seed ({ONE_MODEL} LSTM(4), 100 epochs, batch 1): lstmlab "
            f"{format_seconds(ours_one['seconds'])} with compilation, "
            f"{format_seconds(ours_one['warm_seconds'])} compiled; "
            f"RMSE {ours_one['rmse'][ONE_MODEL]:.1f}"
        )
    ratio = None
    if keras_one.get("status") == "ok":
        console.print(
            f"  the same training in Keras {keras_one['keras']} ({keras_one['backend']}): "
            f"{format_seconds(keras_one['seconds'])}, RMSE {keras_one['rmse']:.1f}"
        )
        if ours_one.get("status") == "ok":
            ratio = keras_one["seconds"] / ours_one["seconds"]
            warm_ratio = keras_one["seconds"] / ours_one["warm_seconds"]
            console.print(
                f"  Keras / lstmlab: {ratio:.1f}x (lstmlab with compilation), "
                f"{warm_ratio:.0f}x (lstmlab compiled)"
            )
    elif keras_one.get("status") != "skipped":
        console.print(f"  Keras failed: {keras_one.get('error')}")
    emit_json(
        {
            "ours_all": ours_all,
            "ours_all_process_seconds": ours_all_wall,
            "ours_one": ours_one,
            "keras_one": keras_one,
            "keras_over_ours": ratio,
            "target_seconds": TARGET_SECONDS,
            "passed": passed,
            "_meta": info,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
