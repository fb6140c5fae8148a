"""The README runs top to bottom, so it cannot go stale.

Every ```sh and ```python block runs in order, in one temporary folder laid out like a fresh
clone (the shared data at ``../shared/data``), with ``lstmlab`` on the PATH as ``make demo``
leaves it in ``.venv/bin``. Blocks fenced ```text (the ``make`` and ``source`` set-up lines,
which this very test runs under) are shown, not run. Training is shortened with the
environment variable the README names, ``LSTMLAB_MAX_EPOCHS``.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", flags=re.S | re.M)
BLOCKS = [(lang, body) for lang, body in FENCE.findall(README.read_text())]
RUNNABLE = [(lang, body) for lang, body in BLOCKS if lang in ("sh", "python")]
MAX_EPOCHS = "2"


def test_every_block_is_fenced_with_a_language_the_test_knows():
    unknown = [lang for lang, _ in BLOCKS if lang not in ("sh", "python", "text")]
    assert not unknown, f"README blocks fenced {unknown}: use sh, python or text"
    assert len(RUNNABLE) >= 6


def test_the_readme_names_the_variable_that_shortens_trainings():
    assert "LSTMLAB_MAX_EPOCHS" in README.read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("readme")  # with the compare presets it runs (tests/test_compare.py)
def test_the_readme_runs_top_to_bottom(tmp_path):
    data = shared_data_dir()
    if data is None:
        pytest.skip(
            "shared data folder not found: set LSTMLAB_DATA or place ../shared/data beside the repo"
        )
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data)
    clone = tmp_path / "lstmlab"
    clone.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LSTMLAB_MAX_EPOCHS": MAX_EPOCHS,
        "MPLBACKEND": "Agg",
    }
    env.pop("LSTMLAB_DATA", None)  # the README's paths must work as written
    for index, (lang, body) in enumerate(RUNNABLE):
        if lang == "sh":
            command = ["bash", "-euo", "pipefail", "-c", body]
        else:
            command = [sys.executable, "-c", body]
        # A block may compile many programs on a cold 2-core machine (compare trains three
        # input normalisations of four models, each compiled once): a generous bound.
        done = subprocess.run(
            command, cwd=clone, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (
            f"README block {index} ({lang}) failed with exit code {done.returncode}:\n{body}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        assert done.stdout.strip(), f"README block {index} ({lang}) printed nothing:\n{body}"


def test_every_figure_table_is_the_one_the_benchmark_wrote():
    """bench/figures.py writes bench/results/figures.md; the README quotes its tables verbatim."""
    written = (ROOT / "bench" / "results" / "figures.md").read_text()
    tables = _tables(written)
    assert len(tables) >= 5
    readme = README.read_text()
    stale = [table.splitlines()[0] for table in tables if table not in readme]
    assert not stale, f"README tables differ from bench/results/figures.md: {stale}"


def _tables(markdown: str) -> list[str]:
    """Every Markdown table of a document, each as its block of ``|`` lines."""
    return re.findall(r"((?:^\|.*\n)+)", markdown, flags=re.M)


def test_every_state_test_sentence_is_the_one_the_runs_wrote():
    """The "When does state help?" section quotes each compare run's stateful-vs-stateless test."""
    figures = json.loads((ROOT / "bench" / "results" / "figures.json").read_text())
    runs = {
        name: run
        for name, run in figures["compare"].items()
        if isinstance(run, dict) and run.get("status") == "ok" and run.get("state_test")
    }
    assert {"airline", "household-weekly"} <= set(runs), sorted(runs)
    readme = " ".join(README.read_text().split())  # the README wraps its lines
    missing = [
        name
        for name, run in runs.items()
        if " ".join(run["state_test"]["sentence"].split()) not in readme
    ]
    assert not missing, f"README does not quote the state test of {missing} verbatim"


@pytest.mark.parametrize("bench", ["accuracy", "forecaster_accuracy"])
def test_the_accuracy_tables_are_the_ones_the_benchmark_wrote(bench):
    """bench/accuracy.py's and bench/forecaster_accuracy.py's tables, quoted verbatim."""
    path = ROOT / "bench" / "results" / f"{bench}.md"
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} not written yet: run bench/{bench}.py --write")
    tables = _tables(path.read_text())
    assert tables, f"{path.relative_to(ROOT)} holds no Markdown table"
    readme = README.read_text()
    stale = [table.splitlines()[0] for table in tables if table not in readme]
    assert not stale, f"README tables differ from {path.relative_to(ROOT)}: {stale}"


def test_the_defaults_table_is_forecaster_configs():
    from lstmlab import ForecasterConfig
    from lstmlab.defaults import MIN_WINDOW

    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", README.read_text(), flags=re.M))
    config = ForecasterConfig()
    fields = ("model", "window", "epochs", "learning_rate", "seeds", "scaler", "norm")
    fields += ("validation", "patience", "refit", "horizon", "seasons")
    for field in fields:
        shown = rows[field].strip().strip("`").strip('"')
        assert shown == str(getattr(config, field)) or float(shown) == getattr(config, field), (
            f"README says {field} = {shown}, ForecasterConfig says {getattr(config, field)!r}"
        )
    window_meaning = re.search(r"^\| `window` \| [^|]+ \| ([^|]+) \|", README.read_text(), re.M)
    assert f"at least {MIN_WINDOW} readings" in window_meaning.group(1)
    stateful, stacked, mlp = (
        ForecasterConfig(model=model).resolved_units for model in ("stateful", "stacked", "mlp")
    )
    stacked_text = ", ".join(map(str, stacked))
    assert rows["units"].strip() == f"{stateful[0]} (stacked {stacked_text}; mlp {mlp[0]})"
    batches = (
        ForecasterConfig(model="stateful").resolved_batch_size,
        ForecasterConfig(model="mlp").resolved_batch_size,
    )
    assert rows["batch_size"].strip() == (
        f"{batches[0]} stream per series (stateful), {batches[1]} samples (window models)"
    )
