"""The XLA programs each entry point compiles, counted in a fresh process: the budgets' child.

``python tests/program_counts.py DATA_FOLDER`` runs each entry point of ``PROGRAM_BUDGETS``
after ``jax.clear_caches()`` (so that none reuses another's programs), inside
``lstmlab.runtime.counting_programs``, and prints one JSON object: entry point -> the count
and the programs by name. Programs read from the persistent cache count as compiled ones: a
count does not depend on the cache, and the calls are the README's own (airline passengers,
``LSTMLAB_MAX_EPOCHS=2`` as the README test sets it), so that they find its programs there.
Epochs change no program, only time.

``tests/test_runtime.py`` holds each count to its budget; ``bench/cold_start.py`` reports
them.
"""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The most programs each entry point may compile. Measured on 2ab6be7: 50, 74, 98 and 7;
# then the eager operations of the hot path moved to NumPy, and every norm of one shape came
# to share its training, read and rollout programs (lstmlab.core.model.norm_program); then
# the early-stopping state came to be built on the host (24, 35, 36 -> 21, 32, 30).
PROGRAM_BUDGETS = {
    "forecaster_fit": 21,  # Forecaster().fit on one series: 3 kinds, a refit, rollouts
    "forecaster_cross_validation": 32,  # cross_validation(horizon=12, windows=3): 3 fits
    "compare": 30,  # --preset airline: four kinds, three normalisations each, with refits
    "moving_average": 6,  # the seed script's stateful and stateless runs
}


def _airline(folder: Path) -> Path:
    return folder / "airline_passengers.csv"


def forecaster_fit(folder: Path) -> None:
    import pandas as pd

    from lstmlab import Forecaster

    data = pd.read_csv(_airline(folder), index_col="Date", parse_dates=True)
    Forecaster(quiet=True).fit(data)


def forecaster_cross_validation(folder: Path) -> None:
    import pandas as pd

    from lstmlab import Forecaster

    data = pd.read_csv(_airline(folder))
    Forecaster(quiet=True).cross_validation(data, time_col="Date", horizon=12, windows=3, level=90)


def compare(folder: Path) -> None:
    from lstmlab.experiments import compare
    from lstmlab.experiments.settings import PRESETS

    series = compare.load_preset_series("airline", _airline(folder))
    compare.run(PRESETS["airline"], series, quiet=True)


def moving_average(folder: Path) -> None:
    from lstmlab.experiments.moving_average import MovingAverageConfig, run

    run(MovingAverageConfig(), quiet=True, log=lambda *args: None)


ENTRY_POINTS: dict[str, Callable[[Path], None]] = {
    "forecaster_fit": forecaster_fit,
    "forecaster_cross_validation": forecaster_cross_validation,
    "compare": compare,
    "moving_average": moving_average,
}


def count(folder: Path, names: list[str]) -> dict[str, Any]:
    """Each entry point's programs, every one counted from an empty in-memory cache."""
    os.environ.setdefault("LSTMLAB_MAX_EPOCHS", "2")  # before lstmlab reads it
    import jax

    from lstmlab.runtime import counting_programs, ensure_compile_cache

    ensure_compile_cache()  # as every entry point does: the counts include cached programs
    out = {}
    for name in names:
        jax.clear_caches()
        with counting_programs() as programs:
            ENTRY_POINTS[name](folder)
        out[name] = {"programs": programs.total, "names": programs.names}
    return out


if __name__ == "__main__":
    print(json.dumps(count(Path(sys.argv[1]), sys.argv[2:] or list(ENTRY_POINTS))))
