import argparse
import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlab import cli, runtime, scoring
from lstmlab.cli import build_parser, compare_config, main
from lstmlab.core.model import LSTMConfig, init_params
from lstmlab.data import loading
from lstmlab.data.loading import DownloadError
from lstmlab.defaults import MIN_WINDOW
from lstmlab.experiments import compare
from lstmlab.forecaster import Forecaster
from lstmlab.live.state_store import SeriesStore
from lstmlab.model_folder import SavedModel, folder_checksum, load_model, save_model
from lstmlab.report import documents
from lstmlab.report.documents import format_number

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=8_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes


def finite_numbers(value):
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


SMALL_MA = ["moving-average", "--input-len", "120", "--epochs", "2", "--quiet"]


def test_moving_average_writes_its_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL_MA, "--tsteps", "3", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "STATELESS LSTM WILL NOT CONVERGE" in printed
    assert f"wrote {out}: config.json, input_vs_expected.png, loss.png, report.md" in printed
    for name in ("input_vs_expected.png", "residuals.png", "loss.png"):
        assert_png(out / name)
    summary = json.loads((out / "summary.json").read_text())
    assert {"config", "baselines", "threshold_mse", "stateful", "stateless", "layout"} <= set(
        summary
    )
    assert summary["config"]["tsteps"] == 3 and summary["config"]["seed"] == 1986
    for name in ("stateful", "stateless"):
        model = summary[name]
        assert {
            "test_mse",
            "ratio_to_mean",
            "converged",
            "expected_to_converge",
            "agrees_with_script",
            "updates",
            "loss",
            "val_loss",
        } <= set(model)
        assert model["updates"] == 96 * 2 and len(model["val_loss"]) == 2
        assert model["converged"] == (model["ratio_to_mean"] <= 0.1)
    assert summary["stateless"]["expected_to_converge"] is False
    assert finite_numbers({k: v for k, v in summary.items() if k != "layout"})
    report = (out / "report.md").read_text()
    assert "![Input and expected output](input_vs_expected.png)" in report
    assert "| predict the training mean |" in report and "layout: official" in report
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 2 and config["device"] == "cpu"


def test_moving_average_streams_reports_layout_and_updates(tmp_path):
    out = tmp_path / "streams"
    assert main([*SMALL_MA, "--batch-size", "8", "--layout", "streams", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layout"]["name"] == "streams"
    assert summary["layout"]["train"].startswith("used 96 of 96 samples in 8 streams x 12")
    assert summary["stateful"]["updates"] == 12 * 2
    assert summary["stateful"]["test_mse_layout"] is not None
    report = (out / "report.md").read_text()
    assert "streams (8 contiguous streams" in report and "stateful 24" in report


def test_output_folder_is_not_overwritten_unless_asked(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "earlier.txt").write_text("keep me")
    assert main([*SMALL_MA, "--out", str(out)]) == 2
    assert "already holds an earlier run; pass --overwrite" in capsys.readouterr().err
    assert (out / "earlier.txt").read_text() == "keep me"
    assert main([*SMALL_MA, "--out", str(out), "--overwrite"]) == 0
    assert not (out / "earlier.txt").exists() and (out / "report.md").exists()


def test_bad_settings_exit_2_with_the_message(tmp_path, capsys):
    assert main([*SMALL_MA, "--tsteps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "tsteps must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["convergence", "--tsteps", "one", "--out", str(tmp_path / "y")])
    assert exit_info.value.code == 2
    assert "expected integers like 1,2,3 or a range like 1-6, got 'one'" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_convergence_writes_grid_and_heat_maps(tmp_path, capsys):
    out = tmp_path / "grid"
    args = [
        "convergence",
        "--tsteps",
        "1,3",
        "--lahead",
        "2",
        "--seeds",
        "2",
        "--input-len",
        "100",
        "--epochs",
        "1",
        "--quiet",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["device"] == "cpu"
    printed = capsys.readouterr().out
    assert "8 trainings in" in printed and "cells agree with the claim" in printed
    with (out / "grid.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 1 * 2 * 2  # tsteps x lahead x modes x seeds
    assert {(r["tsteps"], r["lahead"], r["mode"], r["seed"]) for r in rows} == {
        (t, la, m, s)
        for t in ("1", "3")
        for la in ("2",)
        for m in ("stateful", "stateless")
        for s in ("1986", "1987")
    }
    for row in rows:
        assert math.isfinite(float(row["test_mse"])) and float(row["mean_mse"]) > 0
        assert row["converged"] == str(float(row["ratio"]) <= 0.1)
        assert row["claimed"] == str(row["mode"] == "stateful" or row["lahead"] >= row["tsteps"])
    for mode in ("stateful", "stateless"):
        assert_png(out / f"{mode}_fraction.png")
        assert_png(out / f"{mode}_ratio.png")
    report = (out / "report.md").read_text()
    assert "![stateful fraction converged](stateful_fraction.png)" in report
    assert report.count("| 3 | 2 |") == 2  # one table row per mode
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modes"]["stateless"]["cells"] == 2


NO_GPU = (
    "--device gpu was requested but no GPU is visible to JAX (its backend is 'cpu'); "
    'install JAX\'s CUDA build with pip install -U "jax[cuda12]" on a machine with an '
    "NVIDIA GPU and driver, or pass --device cpu or --device auto"
)


@pytest.mark.skipif(bool(runtime._devices("gpu")), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "command", ["moving-average", "convergence", "compare", "fit", "observe", "serve"]
)
def test_device_gpu_without_a_gpu_exits_2_with_the_install_hint(command, tmp_path, capsys):
    data = tmp_path / "series.csv"
    days = pd.date_range("2001-01-01", periods=40, freq="D")
    pd.DataFrame({"value": np.linspace(1.0, 2.0, 40)}, index=days).to_csv(data, index_label="day")
    out = tmp_path / "out"
    argv = {
        "moving-average": [*SMALL_MA, "--out", str(out)],
        "convergence": ["convergence", "--quiet", "--out", str(out)],
        "compare": ["compare", str(data), "--target", "value", "--quiet", "--out", str(out)],
        "fit": ["fit", str(data), "--target", "value", "--quiet", "--out", str(out)],
        "observe": ["observe", "--model-dir", str(out), "--series", "s", "--input", str(data)],
        "serve": ["serve", "--model-dir", str(out)],
    }[command]
    assert main([*argv, "--device", "gpu"]) == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_GPU}\n"
    assert not out.exists()  # nothing trained, written or served


@pytest.mark.parametrize(
    "argv, off",
    [
        (["--no-compile-cache", "moving-average"], True),
        (["moving-average", "--no-compile-cache"], True),
        (["moving-average"], False),
        (["--no-compile-cache", "serve", "--model-dir", "m"], True),
    ],
)
def test_no_compile_cache_may_come_before_or_after_the_command(argv, off):
    assert build_parser().parse_args(argv).no_compile_cache is off
    # main builds the named command's flags only: the flag is there too
    assert build_parser([cli._command_named(argv)]).parse_args(argv).no_compile_cache is off


CACHE_ENTRIES = r"""
import json, os, sys
from lstmlab import runtime
from lstmlab.cli import main
code = main(sys.argv[1:])
folder = os.environ["LSTMLAB_CACHE_DIR"]
print(json.dumps({
    "code": code,
    "in_use": None if runtime.compile_cache_dir() is None else str(runtime.compile_cache_dir()),
    "entries": sorted(os.listdir(folder)) if os.path.isdir(folder) else None,
}))
"""


def run_with_cache(argv, cache, cwd):
    done = subprocess.run(
        [sys.executable, "-c", CACHE_ENTRIES, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LSTMLAB_CACHE_DIR": str(cache)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_no_compile_cache_leaves_the_cache_folder_untouched(tmp_path):
    cache = tmp_path / "cache"
    tiny = ["moving-average", "--quiet", "--epochs", "1", "--input-len", "50"]
    off = run_with_cache(["--no-compile-cache", *tiny, "--out", "a"], cache, tmp_path)
    assert off == {"code": 0, "in_use": None, "entries": None}  # never created
    on = run_with_cache([*tiny, "--out", "b"], cache, tmp_path)
    assert on["code"] == 0 and on["in_use"] == str(cache.resolve())
    assert any(name.endswith("-cache") for name in on["entries"])  # the programs, written
    # the flag after the command: the filled folder is neither read nor written
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = run_with_cache([*tiny, "--out", "c", "--no-compile-cache"], cache, tmp_path)
    assert again["code"] == 0 and again["in_use"] is None
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before
    # the runs agree bit for bit (but for their timings): a cached program is the compiler's
    reports = [json.loads((tmp_path / run / "summary.json").read_text()) for run in "abc"]
    for report in reports:
        for model in ("stateful", "stateless"):
            assert report[model].pop("seconds") > 0
    assert reports[0] == reports[1] == reports[2]


def test_serve_max_horizon_reaches_the_service(tmp_path, monkeypatch, capsys):
    from lstmlab.defaults import MAX_HORIZON
    from lstmlab.live import http, service

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # the folder check only: run is replaced
    served = []
    monkeypatch.setattr(http, "run", lambda path, **kwargs: served.append(kwargs["config"]))
    assert main(["serve", "--model-dir", str(folder), "--max-horizon", "7"]) == 0
    assert served[0].max_horizon == 7
    assert main(["serve", "--model-dir", str(folder)]) == 0
    assert served[1].max_horizon == service.ServeConfig().max_horizon
    assert main(["serve", "--model-dir", str(folder), "--max-horizon", "0"]) == 2
    assert capsys.readouterr().err == (
        f"lstmlab: error: --max-horizon must be an integer from 1 to {MAX_HORIZON}, got 0; "
        "pass one in that range\n"
    )
    assert len(served) == 2


def test_overwrite_never_deletes_the_working_directory_or_a_file(tmp_path, monkeypatch, capsys):
    from lstmlab.cli import prepare_output_dir

    work = tmp_path / "project"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    for target in (Path("."), tmp_path):
        with pytest.raises(FileExistsError, match="holds the working directory"):
            prepare_output_dir(target, overwrite=True)
    assert (work / "keep.txt").read_text() == "mine"
    assert main([*SMALL_MA, "--out", str(work / "keep.txt")]) == 2
    assert "is a file, not a folder; pass --out with a folder path" in capsys.readouterr().err
    assert prepare_output_dir(work / "runs" / "a", overwrite=True).is_dir()


def compare_main(argv):
    """``lstmlab compare ARGS`` through the real command line."""
    return cli.main(["compare", *argv])


# One fixed input normalisation and persistence alone: nothing compiled three times, no
# statsforecast fit (a test that needs more baselines passes --baselines again: the last wins).
FAST = [
    "--epochs", "1", "--seeds", "1", "--window", "2", "--norm", "none", "--baselines",
    "persistence", "--quiet",
]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["compare", *argv])


def write_csv(path, n: int = 60) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2001-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "load": 50 + np.cumsum(rng.normal(size=n)),
            "temperature": rng.normal(size=n),
        }
    )
    frame.loc[5, "load"] = np.nan  # one missing value: interpolated and reported
    frame.to_csv(path, index=False)


def test_flags_become_the_config():
    args = parse(
        [
            "data.csv",
            "--window",
            "5",
            "--epochs",
            "7",
            "--horizon",
            "3",
            "--strategy",
            "direct",
            "--split",
            "0.8",
            "--seasons",
            "12",
            "--seeds",
            "2",
        ]
    )
    config = compare_config(args)
    assert {(m.window, m.epochs) for m in config.models} == {(5, 7)}
    assert (config.horizon, config.strategy, config.split, config.seasons, config.seeds) == (
        3,
        "direct",
        0.8,
        (12,),
        2,
    )
    assert config.season == 12


def test_models_flag_selects_models_and_names_the_choices():
    config = compare_config(parse(["data.csv", "--models", "stacked", "mlp"]))
    assert [spec.name for spec in config.models] == ["mlp", "stacked"]
    with pytest.raises(ValueError, match=r"--models lstm: no such model; pass names among \['mlp'"):
        compare_config(parse(["data.csv", "--models", "lstm"]))


def test_preset_flags_keep_the_preset_and_override_what_is_given():
    config = compare_config(parse(["--preset", "household-weekly", "--epochs", "3"]))
    assert config.preset == "household-weekly"
    assert config.test_size == 46 * 7 and config.horizon == 7
    assert {m.epochs for m in config.models} == {3}
    # --split replaces the preset's test size
    assert (
        compare_config(parse(["--preset", "household-weekly", "--split", "0.5"])).test_size is None
    )


KINDS = ("mlp", "stateless", "stateful", "stacked")


def test_compare_protocol_flags_reach_the_config():
    args = parse(
        [
            "data.csv",
            *("--seasons", "336", "48", "--folds", "3", "--baselines", "persistence", "auto_ets"),
            *("--norm", "difference", "--validation", "0.25", "--patience", "7"),
            *("--level", "0.8", "--missing", "ffill", "--window", "9", "--epochs", "4"),
            *("--strategy", "recursive"),
        ]
    )
    by_hand = compare.CompareConfig(
        models=tuple(
            compare.ModelSpec(model=kind, window=9, epochs=4, norm="difference") for kind in KINDS
        ),
        baselines=("persistence", "auto_ets"),
        seasons=(48, 336),
        folds=3,
        validation=0.25,
        patience=7,
        level=0.8,
        missing="ffill",
        strategy="recursive",
    )
    assert compare_config(args) == by_hand
    # no flag's default changes CompareConfig's: the flags left out leave its defaults
    assert compare_config(parse(["data.csv"])) == compare.CompareConfig()
    assert compare_config(parse(["data.csv"])).seasons is None  # from the frequency or detected
    assert compare_config(parse(["data.csv", "--seasons", "none"])).seasons == ()
    # a preset keeps what the flags leave out
    preset = compare_config(parse(["--preset", "airline-classic", "--folds", "2"]))
    assert preset == dataclasses.replace(compare.PRESETS["airline-classic"], folds=2)
    # drop and error act when loading: the config's fill stays
    for policy in ("drop", "error"):
        assert compare_config(parse(["data.csv", "--missing", policy])).missing == "interpolate"


def write_gap_csv(path, values) -> None:
    days = pd.date_range("2001-01-01", periods=len(values), freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"when": days, "load": values}).to_csv(path, index=False)


GAP = 39  # the last step of the training part of 60 steps (int(60 * 0.67) = 40)


@pytest.mark.parametrize("missing", ["interpolate", "ffill", "drop", "error"])
def test_compare_loader_keeps_gaps_to_fill_after_the_split(missing, tmp_path):
    values = 50 + np.cumsum(np.random.default_rng(3).normal(size=60))
    values[GAP] = np.nan
    data = tmp_path / "gap.csv"
    write_gap_csv(data, values)
    args = parse([str(data), "--time-col", "when", "--target", "load", "--missing", missing])
    if missing == "error":
        with pytest.raises(ValueError, match="missing"):
            cli.load_command_series(args)
        return
    loaded = cli.load_command_series(args)
    column = loaded.frame["load"].to_numpy()
    if missing == "drop":
        assert len(column) == 59 and not np.isnan(column).any()
        assert loaded.report.missing_policy == "drop"
        return
    # kept as NaN: nothing filled before the split, compare fills it with the user's policy
    assert np.flatnonzero(np.isnan(column)).tolist() == [GAP]
    assert loaded.report.missing_policy == "keep"
    assert compare_config(args).missing == missing


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["interpolate", "ffill"])
def test_compare_fills_a_gap_ending_the_training_part_from_training_values_only(
    missing, tmp_path, monkeypatch, compare_results
):
    # the data path only
    monkeypatch.setattr(documents, "write_compare_report", lambda result, out: {})
    values = 50 + np.cumsum(np.random.default_rng(3).normal(size=60))
    values[GAP] = np.nan
    for shift in (0.0, 100.0):  # the same training part, another test part
        changed = values.copy()
        changed[GAP + 1 :] += shift
        data = tmp_path / f"gap{shift:g}.csv"
        write_gap_csv(data, changed)
        argv = [str(data), "--time-col", "when", "--target", "load", "--models", "mlp"]
        argv += ["--missing", missing, "--device", "cpu", "--out", str(tmp_path / f"{shift:g}")]
        assert compare_main([*argv, *FAST]) == 0
    same, moved = compare_results
    assert same.config.missing == missing and same.n_train == GAP + 1
    for name in ("persistence", "mlp", "mlp_median"):
        first, other = same.outcome(name).forecasts, moved.outcome(name).forecasts
        # the first test origin reads the window (38, 39): training values, the gap filled
        # from them alone, so the test part's values cannot reach it
        np.testing.assert_array_equal(first[:, 0], other[:, 0])
        assert not np.array_equal(first[:, 1:], other[:, 1:])  # later origins read them
    # the gap takes the last training value (interpolating over the split would give
    # (values[38] + values[40]) / 2)
    assert same.outcome("persistence").forecasts[0, 0, 0, 0] == values[GAP - 1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--folds", "0"],
            "--folds must be a positive integer, got 0; pass e.g. --folds 3, or --folds 1 for "
            "one split",
        ),
        (
            ["--level", "1.5"],
            "--level must be a fraction strictly between 0 and 1, got 1.5; pass e.g. --level "
            "0.9 for 90% intervals",
        ),
        (
            ["--seasons", "0"],
            "--seasons takes season lengths in steps (positive integers), got 0; pass e.g. "
            "--seasons 12, or --seasons none for no season",
        ),
        (
            ["--seasons", "12", "none"],
            "--seasons none means no season and stands alone, got --seasons 12 none; pass "
            "season lengths or none",
        ),
        (
            ["--validation", "0.95"],
            "--validation must be a fraction in [0, 0.9), got 0.95; pass e.g. --validation 0.2 "
            "(the last 20% of each training part), or 0 for none",
        ),
        (
            ["--patience", "0"],
            "--patience must be a positive integer, got 0; pass e.g. --patience 20",
        ),
        (
            ["--baselines", "auto_ets"],
            "--baselines auto_ets leaves out persistence, which every comparison includes (the "
            "verdicts and MASE are measured against it); pass --baselines persistence auto_ets",
        ),
        (
            ["--norm", "auto", "--validation", "0"],
            "norm='auto' picks the input normalisation on the validation tail, but validation is 0",
        ),
        # 20 test steps cannot make 25 folds: refused before the run folder exists
        (["--folds", "25"], "fold 21 of 25 trains on 60"),
    ],
)
def test_bad_compare_settings_exit_2_before_anything_is_written(flags, message, tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    out = tmp_path / "run"
    argv = [str(data), "--time-col", "when", "--target", "load", "--out", str(out)]
    assert compare_main([*argv, *FAST, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab: error: ") and message in err
    if flags == ["--folds", "25"]:
        assert "fewer --folds" in err
    assert not out.exists()


def test_compare_flag_values_argparse_refuses(capsys):
    for flags, message in (
        (["--baselines", "persistence", "bogus"], "argument --baselines: invalid choice: 'bogus'"),
        (
            ["--seasons", "twelve"],
            "expected season lengths in steps such as 12 (or 'none' for no season), got 'twelve'",
        ),
        (["--norm", "revin"], "argument --norm: invalid choice: 'revin'"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            compare_main(["d.csv", *flags])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_compare_preset_alone_refuses_a_loader_missing_policy(
    data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LSTMLAB_DATA", str(data_dir))
    out = tmp_path / "run"
    assert compare_main(["--preset", "airline", "--missing", "drop", "--out", str(out)]) == 2
    assert (
        "--missing drop is a loader policy it does not take: pass --missing interpolate or "
        "ffill, or the file as DATA with --target"
    ) in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_compare_prints_the_results_verdict(data_dir, tmp_path, capsys, compare_results):
    argv = [str(data_dir / "airline_passengers.csv"), "--time-col", "Date", "--target"]
    argv += ["Passengers", "--models", "mlp", "--epochs", "2", "--seeds", "3", "--norm", "none"]
    argv += ["--baselines", "persistence", "auto_ets", "--quiet", "--device", "cpu"]
    assert compare_main([*argv, "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    (result,) = compare_results
    assert len(lines) == 4 and lines[0].startswith("compared 4 models in ")
    assert lines[1] == result.verdict.sentence
    assert result.best_validated == "mlp"

    def rmse(name):  # recomputed from the forecasts and the actual values
        errors = result.outcome(name).forecasts[0] - result.actual
        return float(np.sqrt(np.mean(errors**2)))

    ours, theirs = rmse("mlp_median"), rmse("auto_ets")
    assert ours == pytest.approx(result.outcome("mlp_median").mean("rmse"), rel=1e-9)
    head = (
        f"lstmlab's best-validated model, mlp_median, scored test RMSE {format_number(ours)} "
        f"against AutoETS's {format_number(theirs)} ("
    )
    test = scoring.diebold_mariano(
        *(
            np.mean((result.outcome(name).forecasts[0] - result.actual) ** 2, axis=(1, 2))
            for name in ("mlp_median", "auto_ets")
        )
    )
    clear = test.p_value < 0.05
    word = (
        ("loses to" if clear else "is behind")
        if ours > theirs
        else "beats"
        if clear
        else "is ahead of"
    )
    assert lines[2].startswith(head) and f": it {word} the best statistical baseline, " in lines[2]
    assert f"across the {test.origins} test origins (Diebold-Mariano p = " in lines[2]
    assert lines[2] == documents.best_validated_sentence(result)  # the report's sentence
    assert "stateful" not in "\n".join(lines)  # no state test without both LSTMs
    # the other outcome and the state test, on the same result
    better = tuple(
        dataclasses.replace(o, metrics={**o.metrics, "rmse": np.array([theirs / 2])})
        if o.name == "mlp_median"
        else o
        for o in result.outcomes
    )
    state_test = scoring.compare_seeds([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    changed = dataclasses.replace(result, outcomes=better, state_test=state_test)
    lines = documents.summary_lines(changed)
    assert lines[2].startswith(head.replace(format_number(ours), format_number(theirs / 2)))
    assert "(-50.0%): it " in lines[2]  # the test is of the forecasts, not of the scores
    assert lines[2].endswith(
        f"across the {test.origins} test origins (Diebold-Mariano p = "
        + ("< 0.001)." if test.p_value < 0.001 else f"{test.p_value:.2g}).")
    )
    assert lines[3] == state_test.sentence("stateful", "stateless")


@pytest.fixture
def compare_results(monkeypatch):
    """The ``CompareResult`` of every ``compare.run`` the command line makes, in order."""
    results = []
    run = compare.run

    def spy(*args, **kwargs):
        results.append(run(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(compare, "run", spy)
    return results


@pytest.mark.slow
def test_csv_end_to_end(tmp_path, capsys, compare_results):
    data = tmp_path / "load.csv"
    write_csv(data)
    out = tmp_path / "run"
    code = compare_main(
        [
            str(data),
            "--time-col",
            "when",
            "--target",
            "load",
            "--features",
            "temperature",
            "--seasons",
            "7",
            "--horizon",
            "2",
            "--strategy",
            "recursive",  # the extra feature's observed future values are read (the note below)
            "--device",
            "cpu",
            "--out",
            str(out),
            *FAST,
            "--baselines",
            "persistence",
            "seasonal_naive",
        ]
    )
    assert code == 0
    assert json.loads((out / "config.json").read_text())["device"] == "cpu"
    for name in (
        "config.json",
        "metrics.csv",
        "summary.json",
        "report.md",
        "forecasts.png",
        "rmse.png",
        "rmse_per_step.png",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["series"] == ["load"] and summary["features"] == ["temperature"]
    assert {m["window"] for m in summary["config"]["models"]} == {2}
    (result,) = compare_results
    kinds = ("mlp", "stateless", "stateful", "stacked")
    assert [o.name for o in result.outcomes] == ["persistence", "seasonal_naive"] + [
        name for kind in kinds for name in (kind, f"{kind}_median")
    ]
    report = (out / "report.md").read_text()
    # the loader keeps the gap; compare fills it from the training part (row 5 of 40)
    assert "load (target): 1 missing as read, 1 before the policy; 1 left missing (NaN)" in report
    assert (
        "missing values: 1 in the first training part filled (interpolate) from training values "
        "only, 0 in the test part"
    ) in report
    assert "observed future values of the extra features ['temperature']" in report
    assert result.verdict.sentence in report
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith(f"wrote {out}: ")
    summary = documents.summary_lines(result)
    assert printed[-1 - len(summary) : -1] == summary


def test_csv_without_target_is_an_error(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    assert compare_main([str(data), "--out", str(tmp_path / "run"), *FAST]) == 2
    assert "is a plain CSV: pass --target with the column(s) to forecast" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_an_earlier_run_is_not_replaced_without_overwrite(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.md").write_text("earlier")
    assert compare_main([str(data), "--target", "load", "--out", str(out), *FAST]) == 2
    assert "already holds an earlier run; pass --overwrite" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "earlier"


def test_missing_policy_error_reaches_the_user(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    code = compare_main(
        [str(data), "--target", "load", "--missing", "error", "--out", str(tmp_path / "run"), *FAST]
    )
    assert code == 2
    assert "missing" in capsys.readouterr().err


def test_format_options_are_checked(tmp_path, capsys):
    days = tmp_path / "days.csv"
    days.write_text("datetime,Global_active_power\n2007-01-01,1.0\n2007-01-02,2.0\n")
    assert (
        compare_main([str(days), "--time-col", "datetime", "--out", str(tmp_path / "r"), *FAST])
        == 2
    )
    assert "--time-col and --freq are for plain CSV files" in capsys.readouterr().err


def test_no_data_is_an_error(capsys):
    assert compare_main(FAST) == 2
    assert "no DATA given; pass a data file, a --preset, or --download" in capsys.readouterr().err


def test_download_failure_is_reported(tmp_path, monkeypatch, capsys):
    def offline(cache_dir=None):
        raise DownloadError("could not download the archive; the network may be unavailable")

    monkeypatch.setattr(loading, "download_electricity_diagrams", offline)
    code = compare_main(["--download", "--out", str(tmp_path / "run"), *FAST])
    assert code == 1
    assert "the network may be unavailable" in capsys.readouterr().err


def write_electricity(path, n: int = 160) -> None:
    """A small file in the LD2011_2014.txt format: quoted stamps, ';', decimal commas."""
    rng = np.random.default_rng(1)
    times = pd.date_range("2012-01-01 00:00:00", periods=n, freq="15min")
    lines = ['"";"MT_001";"MT_002";"MT_003"']
    for i, stamp in enumerate(times):
        values = [10 + 5 * np.sin(i / 8) + rng.normal(), 3 + rng.uniform(), 20 + rng.normal()]
        cells = ";".join(f"{v:.3f}".replace(".", ",") for v in values)
        lines.append(f'"{stamp:%Y-%m-%d %H:%M:%S}";{cells}')
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_electricity_clients_train_one_global_stateful_model(tmp_path):
    data = tmp_path / "LD2011_2014.txt"
    write_electricity(data)
    out = tmp_path / "run"
    code = compare_main(
        [
            str(data),
            "--target",
            "MT_001",
            "MT_002",
            "--resample",
            "h",
            "--models",
            "stateful",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["series"] == ["MT_001", "MT_002"]
    assert summary["steps"] == 40  # 160 quarter hours, averaged per hour
    assert (
        "1 stream(s) per series x 2 series = batch size 2"
        in summary["models"]["stateful"]["layout"]
    )


@pytest.mark.slow
@pytest.mark.xdist_group("readme")  # the README's seeds: its stateless program (test_compare.py)
def test_preset_without_data_reads_the_shared_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMLAB_DATA", str(data_dir))
    out = tmp_path / "run"
    assert (
        compare_main(
            [
                "--preset",
                "airline-classic",
                "--epochs",
                "1",
                "--seeds",
                "5",
                "--quiet",
                "--models",
                "stateless",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    assert "# lstmlab compare: airline-classic" in report
    assert "| stateless LSTM(4), window 1 | 47.5 |" in report
    assert (
        "| stateful LSTM(4), window 3, batch 1 | 52.2 | one run | `stateful` not run | — | — |"
    ) in report


def test_registered_in_the_lstmlab_cli(tmp_path):
    args = build_parser().parse_args(["compare", "x.csv", "--target", "a", "--horizon", "2"])
    assert args.handler is cli._run_compare
    assert args.horizon == 2


ROWS = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    steps = np.arange(ROWS + 3)
    times = pd.date_range("2024-01-01", periods=ROWS + 3, freq="15min")
    frame = pd.DataFrame(
        {"time": times, "a": np.sin(steps * 0.3) + 2.0, "b": np.cos(steps * 0.2) * 3.0 + 5.0}
    )
    frame.iloc[:ROWS].to_csv(folder / "train.csv", index=False)
    frame.iloc[ROWS:].rename(columns={"a": "value"})[["time", "value"]].to_csv(
        folder / "new.csv", index=False
    )
    return folder, frame


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    folder, _ = data
    model = tmp_path_factory.mktemp("models") / "m"
    code = main(
        [
            "fit",
            str(folder / "train.csv"),
            "--target",
            "a",
            "b",
            "--time-col",
            "time",
            "--model",
            "stateful",
            "--window",
            "4",
            "--units",
            "6",
            "--epochs",
            "2",
            "--out",
            str(model),
            "--quiet",
        ]
    )
    assert code == 0
    return model


def test_parser_registers_three_subcommands():
    parser = build_parser()
    args = parser.parse_args(["serve", "--model-dir", "m", "--port", "0"])
    assert (args.command, args.port, args.host) == ("serve", 0, "127.0.0.1")
    args = parser.parse_args(["observe", "--model-dir", "m", "--series", "a", "--input", "x.csv"])
    assert args.horizon == 1


def test_fit_saves_a_model_with_the_state_at_the_end_of_each_series(fitted, data, capsys):
    _, frame = data
    model = Forecaster.load(fitted)
    assert model.series_ids == ("a", "b")
    assert model.recipe.freq == "15min" and model.recipe.time_col == "time"
    assert model.config.units == (6,) and model.config.stateful
    assert len(model.metrics["loss"]) == 2 and set(model.metrics["one_step_rmse"]) == {"a", "b"}
    for name in ("a", "b"):
        state = model.series_state(name)
        assert state.seen == ROWS
        assert pd.Timestamp(state.last_time) == frame["time"].iloc[ROWS - 1]
        expected = model.replay(frame[name].iloc[:ROWS].to_numpy(), name)[-1]
        np.testing.assert_allclose(model.series_forecast(name).values[0], expected, rtol=1e-6)


def test_fit_refuses_to_replace_a_model_without_overwrite(fitted, data, capsys):
    folder, _ = data
    before = folder_checksum(fitted)
    argv = [
        "fit",
        str(folder / "train.csv"),
        "--target",
        "a",
        "--model",
        "mlp",
        "--window",
        "3",
        "--epochs",
        "1",
        "--out",
        str(fitted),
        "--quiet",
    ]
    assert main(argv) == 2
    assert (
        f"model folder {fitted} already holds a model; pass --overwrite" in capsys.readouterr().err
    )
    assert folder_checksum(fitted) == before


def test_fit_errors_are_reported(data, tmp_path, capsys):
    folder, frame = data
    flat = frame.iloc[:ROWS].assign(a=1.5)
    flat.to_csv(tmp_path / "flat.csv", index=False)
    code = main(
        [
            "fit",
            str(tmp_path / "flat.csv"),
            "--target",
            "a",
            "--time-col",
            "time",
            "--out",
            str(tmp_path / "m"),
            "--quiet",
        ]
    )
    assert code == 2
    assert "constant" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    code = main(
        [
            "fit",
            str(folder / "train.csv"),
            "--target",
            "a",
            "--out",
            str(tmp_path / "other"),
            "--quiet",
        ]
    )
    assert code == 2
    assert "exists and is not a model folder" in capsys.readouterr().err


def test_fit_refuses_missing_drop_that_leaves_gaps_before_training(data, tmp_path, capsys):
    _, frame = data
    holed = frame.iloc[:ROWS].copy()
    holed.loc[10, "a"] = np.nan
    holed.to_csv(tmp_path / "holed.csv", index=False)
    argv = ["fit", str(tmp_path / "holed.csv"), "--target", "a", "--time-col", "time"]
    argv += ["--missing", "drop", "--epochs", "1", "--out", str(tmp_path / "m"), "--quiet"]
    assert main(argv) == 2
    assert (
        "--missing drop removed 1 row(s) of "
        f"{tmp_path / 'holed.csv'}, leaving holes in the '15min' time grid that a live model "
        "cannot read; pass --missing interpolate or --missing ffill"
    ) in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_fit_with_zero_epochs_saves_and_reports_no_loss(data, tmp_path, capsys):
    folder, _ = data
    argv = ["fit", str(folder / "train.csv"), "--target", "a", "--time-col", "time"]
    argv += ["--model", "mlp", "--window", "3", "--epochs", "0"]
    assert main([*argv, "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert "final loss none (no epochs)" in capsys.readouterr().out
    assert Forecaster.load(tmp_path / "m").metrics["final_loss"] is None


def test_observe_advances_the_saved_state(fitted, data, tmp_path, capsys):
    folder, frame = data
    model = tmp_path / "m"
    Forecaster.load(fitted).save(model)
    # the reference observes a copy: a loaded forecaster writes to its own folder's store
    Forecaster.load(fitted).save(tmp_path / "reference")
    reference = Forecaster.load(tmp_path / "reference")
    expected = reference.observe(
        "a",
        frame["a"].iloc[ROWS:].to_numpy(),
        frame["time"].iloc[ROWS:].astype(str).tolist(),
        horizon=2,
    )
    code = main(
        [
            "observe",
            "--model-dir",
            str(model),
            "--series",
            "a",
            "--input",
            str(folder / "new.csv"),
            "--horizon",
            "2",
            "--json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["seen"] == ROWS + 3
    np.testing.assert_array_equal(np.asarray(printed["values"]), expected.values)
    assert printed["timestamps"] == list(expected.timestamps)
    saved = Forecaster.load(model)
    assert saved.series_state("a").seen == ROWS + 3
    assert saved.series_state("b").seen == ROWS
    np.testing.assert_array_equal(saved.series_forecast("a", 2).values, expected.values)
    # the same readings again are a repeat (the retry rule): answered, nothing applied twice
    before = folder_checksum(model)
    code = main(
        ["observe", "--model-dir", str(model), "--series", "a", "--input", str(folder / "new.csv")]
    )
    assert code == 0
    assert "0 reading(s) observed (3 already accepted: a repeat" in capsys.readouterr().out
    assert Forecaster.load(model).series_state("a").seen == ROWS + 3
    assert folder_checksum(model) == before


def test_observe_quiet_prints_only_the_summary_and_what_it_wrote(fitted, data, tmp_path, capsys):
    folder, _ = data
    model = tmp_path / "m"
    Forecaster.load(fitted).save(model)
    argv = ["observe", "--model-dir", str(model), "--input", str(folder / "new.csv")]
    argv += ["--horizon", "2", "--device", "cpu"]
    assert main([*argv, "--series", "a", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == [
        f"series a: 3 reading(s) observed, {ROWS + 3} in all",
        f"saved the state of series a to {model}",
    ]
    # without --quiet the forecast lines are there: the check above can fail
    assert main([*argv, "--series", "b"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_observe_new_series_and_bad_input(fitted, data, tmp_path, capsys):
    folder, _ = data
    model = tmp_path / "m"
    Forecaster.load(fitted).save(model)
    # a full window of the stateful model (4 readings): it forecasts from the fourth on
    times = ["2024-02-01 00:00", "2024-02-01 00:15", "2024-02-01 00:30", "2024-02-01 00:45"]
    pd.DataFrame({"time": times, "x": [1.0, 2.0, 1.5, 2.5]}).to_csv(
        tmp_path / "fresh.csv", index=False
    )
    command = ["observe", "--model-dir", str(model), "--series", "x"]
    known = Forecaster.load(model).series_ids
    # an id the model does not have (a typo, say) is refused, and nothing is stored
    assert main([*command, "--input", str(tmp_path / "fresh.csv")]) == 2
    err = capsys.readouterr().err
    assert f"series 'x' is not one of this model's {len(known)} series" in err
    assert err.rstrip().endswith("To start a new series from a fresh state, pass --new-series")
    assert Forecaster.load(model).series_ids == known
    assert main([*command, "--new-series", "--input", str(tmp_path / "fresh.csv")]) == 0
    assert Forecaster.load(model).series_ids == (*known, "x")
    out = capsys.readouterr().out
    assert "series x: 4 reading(s) observed, 4 in all" in out
    assert "2024-02-01T01:00:00" in out
    pd.DataFrame({"time": ["2024-02-01 01:00"], "x": ["oops"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    assert (
        main(
            [
                "observe",
                "--model-dir",
                str(model),
                "--series",
                "x",
                "--input",
                str(tmp_path / "bad.csv"),
            ]
        )
        == 2
    )
    assert "hold text that is not a number" in capsys.readouterr().err
    assert (
        main(
            [
                "observe",
                "--model-dir",
                str(tmp_path / "none"),
                "--series",
                "x",
                "--input",
                str(tmp_path / "bad.csv"),
            ]
        )
        == 2
    )
    assert "no model folder at" in capsys.readouterr().err


def test_lstmlab_cli_knows_the_live_commands():
    args = build_parser().parse_args(["fit", "data.csv", "--target", "x", "y", "--out", "m"])
    assert (args.handler.__name__, args.model, args.target) == ("_run_fit", "auto", ["x", "y"])


os.environ.setdefault("KERAS_BACKEND", "jax")

NO_KERAS = (
    "Keras model exchange needs Keras 3, which is not installed; install it with "
    "pip install 'lstmlab[keras]'"
)


@pytest.fixture
def keras():
    return pytest.importorskip(
        "keras", reason="Keras is not installed: pip install 'lstmlab[keras]'"
    )


def _stateful_keras_file(keras, path, seed=0):
    from lstmlab import keras_io as kx
    from tests.parity.keras_helpers import (
        build_keras_lstm,
        keras_call,
        random_weights,
        set_keras_weights,
    )

    model = build_keras_lstm(
        batch_size=2, timesteps=3, features=1, units=[4], outputs=1, stateful=True
    )
    set_keras_weights(model, random_weights(model, seed))
    keras_call(model, np.random.default_rng(seed).normal(size=(2, 3, 1)).astype(np.float32))
    kx.save_keras(model, path)
    return model


def test_import_then_export_through_the_command_line(keras, tmp_path, capsys):
    from lstmlab import keras_io as kx
    from tests.parity.keras_helpers import keras_call, keras_states

    model = _stateful_keras_file(keras, tmp_path / "in.keras")
    folder = tmp_path / "folder"
    assert main(["import-keras", str(tmp_path / "in.keras"), "--out", str(folder)]) == 0
    assert capsys.readouterr().out == (
        f"imported {tmp_path / 'in.keras'} (stateful LSTM, units [4], 3 time step(s) x 1 "
        "feature(s) -> 1 output(s))\n"
        "carried state saved for series default.0, default.1\n"
        f"saved model to {folder}\n"
    )
    saved = load_model(folder, states=SeriesStore)
    np.testing.assert_array_equal(saved.states["rnn.0.h"], keras_states(model)[0][0])

    out = tmp_path / "out.keras"
    args = ["export-keras", "--model-dir", str(folder), "--out", str(out), "--series", "default.1"]
    assert main(args) == 0
    assert capsys.readouterr().out == (
        f"exported {folder} (stateful LSTM, units [4], 3 time step(s) x 1 feature(s) -> 1 "
        "output(s)) as Keras model 'lstmlab'\n"
        f"wrote {out}\n"
    )
    back = kx.load_keras(out)
    np.testing.assert_array_equal(keras_states(back)[0][0], keras_states(model)[0][0][1:])
    x = np.random.default_rng(3).normal(size=(2, 3, 1)).astype(np.float32)
    expected = keras_call(model, x)[1:]  # row 1 of the original continues as the only row
    np.testing.assert_allclose(keras_call(back, x[1:]), expected, rtol=0, atol=1e-5)


def test_existing_destinations_need_overwrite(keras, tmp_path, capsys):
    _stateful_keras_file(keras, tmp_path / "in.keras")
    folder = tmp_path / "folder"
    assert main(["import-keras", str(tmp_path / "in.keras"), "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main(["import-keras", str(tmp_path / "in.keras"), "--out", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"lstmlab: error: model folder {folder} already holds a model; pass --overwrite to "
        "replace it or --out to choose another folder\n"
    )
    args = ["import-keras", str(tmp_path / "in.keras"), "--out", str(folder), "--overwrite"]
    assert main(args) == 0
    capsys.readouterr()
    args = ["export-keras", "--model-dir", str(folder), "--out", str(tmp_path / "in.keras")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"lstmlab: error: {tmp_path / 'in.keras'} already exists; pass --overwrite to replace "
        "it or --out to choose another file\n"
    )


def test_unsupported_layers_exit_2_naming_them(keras, tmp_path, capsys):
    from tests.parity.keras_helpers import keras_context

    with keras_context():
        model = keras.Sequential(
            [
                keras.Input(shape=(3, 1)),
                keras.layers.GRU(2, name="gru", kernel_initializer="zeros"),
                keras.layers.Dense(1, kernel_initializer="zeros"),
            ],
            name="net",
        )
        model.save(tmp_path / "gru.keras")
    code = main(["import-keras", str(tmp_path / "gru.keras"), "--out", str(tmp_path / "f")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "lstmlab: error: cannot import the Keras model 'net': unsupported layer(s) 'gru' (GRU); "
        "supported: InputLayer; LSTM"
    )
    assert not (tmp_path / "f").exists()


def test_export_notes_that_the_scaler_stays_behind(keras, tmp_path, capsys):
    config = LSTMConfig(units=(3,), timesteps=2, stateful=False)
    scaler = {"kind": "minmax", "columns": ["value"], "offset": [0.0], "scale": [2.0]}
    recipe = {
        "kind": "stateless",
        "window": 2,
        "columns": ["value"],
        "time_col": None,
        "freq": None,
    }
    save_model(
        tmp_path / "folder",
        SavedModel(config=config, params=init_params(config, 0), recipe=recipe, scaler=scaler),
        opener=SeriesStore,
    )
    out = tmp_path / "m.keras"
    assert main(["export-keras", "--model-dir", str(tmp_path / "folder"), "--out", str(out)]) == 0
    assert (
        "note: the folder's minmax scaler is not part of the Keras model; feed it scaled values\n"
        in capsys.readouterr().out
    )
    assert out.is_file()


def test_without_keras_the_commands_say_how_to_install_it(monkeypatch, tmp_path, capsys):
    from lstmlab.keras_io import keras_module

    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` raise ImportError
    with pytest.raises(ValueError, match=re.escape(NO_KERAS)):
        keras_module()
    (tmp_path / "m.keras").write_bytes(b"")
    code = main(["import-keras", str(tmp_path / "m.keras"), "--out", str(tmp_path / "f")])
    assert code == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_KERAS}\n"


# --------------------------------------------------------------------------- vocabulary


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"lstmlab {version('lstmlab')}\n"
    assert cli.__version__ == version("lstmlab")


def _subcommands():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices


def test_every_flag_with_a_default_shows_it_in_help():
    commands = _subcommands()
    assert set(commands) == {
        "moving-average",
        "convergence",
        "compare",
        "fit",
        "observe",
        "serve",
        "import-keras",
        "export-keras",
    }
    for name, parser in commands.items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help text"
            if action.nargs == 0 or action.required:
                continue  # switches and required flags have no default to show
            flag = action.option_strings[0]
            helped = " ".join(parser._get_formatter()._expand_help(action).split())
            assert "(default:" in helped, f"{name} {flag}: {helped!r}"
            assert flag in text


def test_help_shows_forecaster_config_defaults_for_fit_and_compare():
    from lstmlab.forecaster import ForecasterConfig

    defaults = ForecasterConfig()
    commands = _subcommands()
    fit = " ".join(commands["fit"].format_help().split())
    assert f"training epochs (default: {defaults.epochs})" in fit
    assert f"Adam step size (default: {defaults.learning_rate})" in fit
    # ForecasterConfig's window None: one covering the season, stated in words
    assert defaults.window is None
    assert f"(default: the shortest season plus one step, at least {MIN_WINDOW})" in fit
    compare_help = " ".join(commands["compare"].format_help().split())
    assert f"(default: {defaults.epochs}, ForecasterConfig's;" in compare_help
    # no flag default of fit differs from ForecasterConfig's
    args = build_parser().parse_args(["fit", "d.csv", "--target", "a", "--out", "m"])
    assert cli._forecaster_config(args) == defaults
    # and compare's default models are ForecasterConfig's, kind by kind
    config = compare_config(parse(["d.csv"]))
    assert (config.seeds, config.seed, config.scaler) == (
        defaults.seeds,
        defaults.seed,
        defaults.scaler,
    )
    for spec in config.models:
        kind = ForecasterConfig(model=spec.name)
        assert (spec.epochs, spec.learning_rate, spec.units, spec.batch_size) == (
            kind.epochs,
            kind.learning_rate,
            kind.resolved_units,
            kind.resolved_batch_size,
        )
        # the window is compare's: one covering the season, at least ForecasterConfig's
        assert spec.window is None
    assert "(default: the shortest season plus one step, at least the Forecaster's" in compare_help
    assert f"(default: the preset's, else {compare.CompareConfig().strategy})" in compare_help
    assert compare.CompareConfig().strategy == "direct"


def test_target_takes_several_columns_in_every_command():
    parser = build_parser()
    for argv in (
        ["compare", "d.csv", "--target", "a", "b"],
        ["fit", "d.csv", "--target", "a", "b", "--out", "m"],
        ["observe", "--model-dir", "m", "--series", "s", "--input", "x", "--target", "a", "b"],
    ):
        assert parser.parse_args(argv).target == ["a", "b"]


def test_old_flag_spellings_are_refused(capsys):
    for argv in (
        ["fit", "d.csv", "--target", "a", "--save", "m"],
        ["observe", "--model", "m", "--series", "s", "--input", "x.csv"],
        ["serve", "--model", "m"],
        ["fit", "d.csv", "--target", "a", "--out", "m", "--model", "lstm"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "invalid choice: 'lstm'" in capsys.readouterr().err


def test_quiet_prints_only_the_summary_and_names_what_was_written(tmp_path, capsys):
    out = tmp_path / "quiet"
    assert main([*SMALL_MA, "--device", "cpu", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == [
        "the script expects: STATELESS LSTM WILL NOT CONVERGE",
        *[line for line in lines if line.startswith(("stateful: ", "stateless: "))],
        f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())),
    ]
    assert len(lines) == 4 and captured.err == ""
    # without --quiet the script's per-epoch lines are there: the check above can fail
    assert main([*SMALL_MA[:-1], "--device", "cpu", "--out", str(tmp_path / "loud")]) == 0
    assert "Epoch 2 / 2 - loss:" in capsys.readouterr().out


@pytest.mark.slow
def test_quiet_compare_and_fit_print_no_per_model_or_epoch_lines(tmp_path, capsys, compare_results):
    data = tmp_path / "load.csv"
    write_csv(data)
    out = tmp_path / "run"
    argv = [str(data), "--time-col", "when", "--target", "load", "--models", "mlp"]
    argv += ["--folds", "2"]  # a rolling-origin backtest: the model is fitted twice
    assert compare_main([*argv, *FAST, "--device", "cpu", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    (result,) = compare_results
    assert [fold.n_train for fold in result.folds] == [40, 50]
    # the summary: models and time, the verdict, the best-validated model against a baseline
    assert len(lines) == 4 and lines[0].startswith("compared 3 models in ")
    # --quiet keeps one progress line per finished model on stderr: each baseline, then the
    # mlp once per fold
    progress = captured.err.splitlines()
    baselines = [o.label for o in result.outcomes if o.is_baseline]
    assert len(progress) == len(baselines) + 2
    assert all(line.startswith("lstmlab compare: ") for line in progress)
    assert [line.split(": ")[1] for line in progress[: len(baselines)]] == baselines
    assert all("(fold " in line for line in progress[len(baselines) :])
    assert lines[1:3] == [
        result.verdict.sentence,
        *[line for line in lines if line.startswith("lstmlab's best-validated model, mlp_")],
    ]
    assert lines[3] == f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir()))
    model = tmp_path / "model"
    argv = ["fit", str(data), "--time-col", "when", "--target", "load", "--model", "mlp"]
    argv += ["--window", "3", "--epochs", "2", "--seeds", "1", "--quiet", "--out", str(model)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "epoch" not in captured.out.lower()
    assert captured.out.splitlines()[-1] == f"saved model to {model}"
    assert (model / "config.json").is_file()


@pytest.mark.slow
def test_convergence_names_every_file_it_wrote(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["convergence", "--tsteps", "1", "--lahead", "1", "--seeds", "1", "--input-len", "100"]
    assert main([*argv, "--epochs", "1", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir()))
    assert len(lines) == 4  # two modes, the trainings, the files


def test_observe_refuses_a_series_id_with_control_characters(tmp_path, capsys):
    argv = ["observe", "--model-dir", str(tmp_path), "--series", "a\x00b", "--input", "x.csv"]
    assert main(argv) == 2
    assert "series id must not hold control characters" in capsys.readouterr().err


def test_fit_and_observe_read_local_times_across_daylight_saving_with_tz(tmp_path, capsys):
    index = pd.date_range("2024-02-01", "2024-04-10", freq="D", tz="Europe/Paris")
    cells = [t.isoformat() for t in index]  # +01:00 until 03-31, +02:00 after
    data = tmp_path / "daily.csv"
    values = 10.0 + np.arange(len(index)) % 7
    pd.DataFrame({"time": cells, "load": values}).to_csv(data, index=False)
    fit = ["fit", str(data), "--target", "load", "--model", "mlp", "--window", "3"]
    fit += ["--epochs", "1", "--seeds", "1", "--quiet", "--out", str(tmp_path / "m")]
    assert main(fit) == 2
    assert "pass --tz, e.g. 'Europe/Paris'" in capsys.readouterr().err
    assert main([*fit, "--tz", "Europe/Paris"]) == 0
    capsys.readouterr()
    assert Forecaster.load(tmp_path / "m").series_state("load").zone == "Europe/Paris"
    # later readings without offsets, read in the zone
    later = pd.date_range("2024-04-11", periods=3, freq="D")
    pd.DataFrame({"time": later.strftime("%Y-%m-%d"), "load": [10.0, 11.0, 12.0]}).to_csv(
        tmp_path / "next.csv", index=False
    )
    observe = ["observe", "--model-dir", str(tmp_path / "m"), "--series", "load"]
    observe += ["--input", str(tmp_path / "next.csv"), "--tz", "Europe/Paris", "--json"]
    assert main(observe) == 0
    answer = json.loads(capsys.readouterr().out)
    # the reference: pandas' next local midnight after the last reading
    expected = pd.Timestamp("2024-04-14", tz="Europe/Paris").isoformat()
    assert answer["timestamps"] == [expected] and answer["seen"] == len(index) + 3


@pytest.mark.parametrize(
    "name",
    [
        "lstmlab.experiments.compare",
        "lstmlab.experiments.moving_average",
        "lstmlab.experiments.convergence",
        "lstmlab.forecaster",
        "lstmlab.live.service",
    ],
)
def test_a_commands_description_is_its_modules_docstring_read_without_ast_parse(name, monkeypatch):
    import ast
    import importlib.util

    source = Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")
    expected = ast.get_docstring(ast.parse(source))  # the reference, before the patch
    assert expected

    def refuse(*args, **kwargs):
        # ast.parse beside the background import of the report modules raised SystemError
        # ("AST constructor recursion depth mismatch") on CPython 3.11 under load
        raise AssertionError("the description must be read without ast.parse")

    monkeypatch.setattr(ast, "parse", refuse)
    assert cli._module_doc(name) == expected
