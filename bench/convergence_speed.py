"""Wall time of the default convergence grid, and the same grid extrapolated for Keras 3.

Runs ``lstmlab.experiments.convergence.run`` on the default grid (6 x 6 cells x 3 seeds x 2
modes = 216 trainings, 10 epochs each; compilation included), then trains one cell (tsteps 2,
lahead 1, one seed, both modes) with Keras 3 as the script does and multiplies its time per
epoch out to the whole grid. Target: the grid in under 60 s on a 2-core CPU. Not a test.

    python bench/convergence_speed.py [--keras-epochs 2] [--skip-keras]
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from lstmlab.experiments import moving_average as ma  # noqa: E402
from lstmlab.experiments.convergence import ConvergenceConfig, run  # noqa: E402


def keras_seconds_per_epoch(epochs: int) -> dict[str, float]:
    """Keras 3: seconds per epoch of the script's two models on (tsteps 2, lahead 1)."""
    import keras

    data = ma.make_data(ma.MovingAverageConfig())
    out = {}
    for stateful in (True, False):
        model = keras.Sequential(
            [
                keras.Input(shape=(1, 1), batch_size=1),
                keras.layers.LSTM(20, stateful=stateful),
                keras.layers.Dense(1),
            ]
        )
        model.compile(loss="mse", optimizer="adam")
        fit = dict(
            batch_size=1,
            epochs=1,
            verbose=0,
            shuffle=False,
            validation_data=(data.x_test, data.y_test),
        )
        model.fit(data.x_train, data.y_train, **fit)  # first epoch: compilation
        started = time.perf_counter()
        for _ in range(epochs):
            model.fit(data.x_train, data.y_train, **fit)
            if stateful:
                model.layers[0].reset_states()
        out["stateful" if stateful else "stateless"] = (time.perf_counter() - started) / epochs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--keras-epochs",
        type=int,
        default=2,
        help="timed Keras epochs per model (after one warm-up epoch)",
    )
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args()
    config = ConvergenceConfig()
    started = time.perf_counter()
    result = run(config, quiet=True)
    seconds = time.perf_counter() - started
    trainings = len(result.rows)
    print(
        f"lstmlab: {trainings} trainings x {config.epochs} epochs in {seconds:.1f} s "
        f"(target < 60 s on 2 cores)"
    )
    again = time.perf_counter()
    run(config, quiet=True)
    warm_seconds = time.perf_counter() - again
    print(f"lstmlab, second run (compiled programs reused): {warm_seconds:.1f} s")
    figures = {
        "trainings": trainings,
        "epochs": config.epochs,
        "seconds": seconds,
        "warm_seconds": warm_seconds,
        "target_seconds": 60.0,
        "passed": seconds < 60.0,
        "agreeing_cells": {},
    }
    for mode in ("stateful", "stateless"):
        cells = result.cells(mode)
        agreeing = sum(c.agrees for c in cells)
        figures["agreeing_cells"][mode] = agreeing
        print(f"  {mode}: {agreeing} of {len(cells)} cells agree")
    if args.skip_keras:
        print(json.dumps(figures))
        return
    per_epoch = keras_seconds_per_epoch(args.keras_epochs)
    per_cell_seed = sum(per_epoch.values()) * config.epochs  # both modes, one seed
    cells = len(config.tsteps) * len(config.lahead) * config.seeds
    keras_total = per_cell_seed * cells
    print(
        f"Keras 3 ({os.environ['KERAS_BACKEND']} backend), measured on (tsteps 2, lahead 1): "
        f"{per_epoch['stateful']:.2f} s/epoch stateful, {per_epoch['stateless']:.2f} s/epoch "
        f"stateless -> {per_cell_seed:.1f} s per cell and seed"
    )
    print(
        f"Keras 3, extrapolated to the grid ({cells} cell-seeds x 2 modes, lahead 1 cost, "
        f"compilation excluded): {keras_total:.0f} s = {keras_total / 60:.1f} min, "
        f"{keras_total / seconds:.0f}x lstmlab"
    )
    figures["keras"] = {
        "backend": os.environ["KERAS_BACKEND"],
        "seconds_per_epoch": per_epoch,
        "grid_seconds_extrapolated": keras_total,
        "ratio": keras_total / seconds,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
