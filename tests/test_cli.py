import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlab import devices
from lstmlab.cli import main

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
    assert f"Report written to {(out / 'report.md').resolve()}" in printed
    for name in ("input_vs_expected.png", "residuals.png", "loss.png"):
        assert_png(out / name)
    summary = json.loads((out / "summary.json").read_text())
    assert {"config", "baselines", "threshold_mse", "stateful", "stateless", "layout"} <= set(
        summary)
    assert summary["config"]["tsteps"] == 3 and summary["config"]["seed"] == 1986
    for name in ("stateful", "stateless"):
        model = summary[name]
        assert {"test_mse", "ratio_to_mean", "converged", "expected_to_converge",
                "agrees_with_script", "updates", "loss", "val_loss"} <= set(model)
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
        capsys.readouterr().err)


@pytest.mark.slow
def test_convergence_writes_grid_and_heat_maps(tmp_path, capsys):
    out = tmp_path / "grid"
    args = ["convergence", "--tsteps", "1,3", "--lahead", "2", "--seeds", "2",
            "--input-len", "100", "--epochs", "1", "--quiet", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["device"] == "cpu"
    printed = capsys.readouterr().out
    assert "8 trainings in" in printed and "cells agree with the claim" in printed
    with (out / "grid.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 1 * 2 * 2  # tsteps x lahead x modes x seeds
    assert {(r["tsteps"], r["lahead"], r["mode"], r["seed"]) for r in rows} == {
        (t, la, m, s) for t in ("1", "3") for la in ("2",)
        for m in ("stateful", "stateless") for s in ("1986", "1987")}
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


@pytest.mark.skipif(bool(devices._devices("gpu")), reason="this machine has a GPU")
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
        "fit": ["fit", str(data), "--target", "value", "--quiet", "--save", str(out)],
        "observe": ["observe", "--model", str(out), "--series", "s", "--input", str(data)],
        "serve": ["serve", "--model", str(out)],
    }[command]
    assert main([*argv, "--device", "gpu"]) == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_GPU}\n"
    assert not out.exists()  # nothing trained, written or served


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
