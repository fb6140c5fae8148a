"""Report writers (lstmlab.report.documents), fed hand-built results: no training here."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from lstmlab.core.train import History
from lstmlab.experiments import compare, convergence, moving_average
from lstmlab.report.documents import (
    compare_summary,
    write_compare_report,
    write_convergence_report,
    write_moving_average_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- moving average


def moving_average_result(layout="official"):
    config = moving_average.MovingAverageConfig(
        input_len=120, tsteps=3, lahead=1, batch_size=8, epochs=2, layout=layout
    )
    data = moving_average.make_data(config)
    train = moving_average.make_batches(
        data.x_train, data.y_train, batch_size=config.batch_size, layout=layout
    )
    test = moving_average.make_batches(
        data.x_test, data.y_test, batch_size=config.batch_size, layout=layout
    )
    score = moving_average.scoring_batches(data, config)
    y_test = score.to_samples(score.y_batches).astype(np.float64)
    reference = moving_average.baselines(data, config.tsteps)

    def outcome(name, noise):
        # a hand-made prediction: the target plus a fixed offset, so the MSE is noise**2
        predictions = y_test + noise
        mse = float(np.mean(np.square(y_test - predictions)))
        return moving_average.ModelOutcome(
            name=name,
            test_mse=mse,
            test_mse_layout=mse * 2 if layout == "streams" else None,
            ratio=mse / reference.mean,
            converged=bool(mse / reference.mean <= config.threshold),
            predictions=predictions,
            history=History(loss=(0.5, 0.25), val_loss=(0.6, 0.3), updates=24),
            seconds=1.5,
            updates=24,
        )

    return moving_average.MovingAverageResult(
        config=config,
        data=data,
        stateful=outcome("stateful", 1e-3),
        stateless=outcome("stateless", 10.0),
        baselines=reference,
        y_test=y_test,
        train_trim=train.trim,
        test_trim=test.trim,
        score_trim=score.trim,
    )


def test_moving_average_report_writes_every_file_from_the_result(tmp_path):
    result = moving_average_result()
    paths = write_moving_average_report(result, tmp_path)
    assert set(paths) == {"input_plot", "residual_plot", "loss_plot", "summary", "report"}
    for key in ("input_plot", "residual_plot", "loss_plot"):
        assert_png(paths[key])
    summary = json.loads(paths["summary"].read_text())
    assert summary["stateful"]["converged"] is True and summary["stateless"]["converged"] is False
    assert summary["stateful"]["loss"] == [0.5, 0.25]
    assert summary["stateful"]["test_mse"] == pytest.approx(1e-6)
    assert summary["threshold_mse"] == pytest.approx(0.1 * result.baselines.mean)
    assert summary["stateless"]["expected_to_converge"] is False
    assert summary["stateless"]["agrees_with_script"] is True
    report = paths["report"].read_text()
    assert "**STATELESS LSTM WILL NOT CONVERGE**" in report
    assert "![Loss per epoch](loss.png)" in report
    assert "- **stateful**: converged" in report and "- **stateless**: did not converge" in report
    assert "Scored in the training layout instead" not in report


def test_moving_average_report_in_the_streams_layout_notes_the_layout_score(tmp_path):
    paths = write_moving_average_report(moving_average_result("streams"), tmp_path)
    report = paths["report"].read_text()
    assert "streams (8 contiguous streams" in report
    assert "Scored in the training layout instead (8 test streams" in report


# --------------------------------------------------------------------------- convergence


def convergence_result():
    config = convergence.ConvergenceConfig(tsteps=(1, 3), lahead=(2,), seeds=2, epochs=1)
    rows = []
    for mode in convergence.MODES:
        for tsteps in config.tsteps:
            for seed in config.seed_values:
                # the stateless model at tsteps 3 > lahead 2 does not converge, as claimed;
                # the stateful model at tsteps 3 fails for one seed (a disagreeing cell)
                bad = tsteps == 3 and (mode == "stateless" or seed == config.seed_values[0])
                ratio = 0.5 if bad else 0.01
                rows.append(
                    convergence.GridRow(
                        tsteps=tsteps,
                        lahead=2,
                        mode=mode,
                        seed=seed,
                        test_mse=ratio * 2.0,
                        mean_mse=2.0,
                        ratio=ratio,
                        converged=ratio <= config.threshold,
                        claimed=convergence.claim(mode, tsteps, 2),
                        updates=10,
                    )
                )
    return convergence.ConvergenceResult(config=config, rows=tuple(rows), seconds=3.0)


def test_convergence_report_writes_grid_heat_maps_and_verdicts(tmp_path):
    result = convergence_result()
    paths = write_convergence_report(result, tmp_path)
    for mode in convergence.MODES:
        assert_png(paths[f"{mode}_fraction"])
        assert_png(paths[f"{mode}_ratio"])
    frame = pd.read_csv(paths["grid"])
    assert len(frame) == len(result.rows) == 8
    assert frame["ratio"].tolist() == [row.ratio for row in result.rows]
    summary = json.loads(paths["summary"].read_text())
    assert summary["modes"]["stateless"] == {**summary["modes"]["stateless"], "cells": 2}
    assert summary["modes"]["stateless"]["agreeing_cells"] == 2
    assert summary["modes"]["stateful"]["agreeing_cells"] == 1
    report = paths["report"].read_text()
    assert "## Stateful model: 1 of 2 cells agree" in report
    assert "## Stateless model: 2 of 2 cells agree" in report
    assert "| 3 | 2 | converges | mixed | 1/2 | 0.255 | **no** |" in report
    assert "![stateful fraction converged](stateful_fraction.png)" in report


# --------------------------------------------------------------------------- compare


def compare_result(horizon=3, seeds=2):
    """A comparison of two baselines and one neural model, forecasts written by hand."""
    steps, n_train = 40, 28
    index = pd.date_range("2001-01-01", periods=steps, freq="MS")
    targets = np.linspace(10.0, 49.0, steps)[:, None]  # (time, series)
    origins = np.arange(n_train, steps - horizon + 1)
    actual = targets[origins[:, None] + np.arange(horizon)]  # (origins, horizon, series)
    config = compare.CompareConfig(
        models=(compare.ModelSpec(model="stateful", units=(4,)),),
        seeds=seeds,
        horizon=horizon,
        season=12,
    )

    def outcome(name, forecasts, **extra):
        return compare.ModelOutcome(
            name=name,
            label=name.replace("_", " "),
            description=f"hand-made {name}",
            forecasts=forecasts,
            metrics=compare.forecast_metrics(forecasts, actual),
            seconds=0.5,
            **extra,
        )

    persistence = np.broadcast_to(targets[origins - 1][:, None], actual.shape)[None]
    seasonal = (actual - 12.0)[None]
    offsets = np.array([0.5, -1.5])[:seeds, None, None, None]
    neural = actual[None] + offsets  # (seeds, origins, horizon, series)
    outcomes = (
        outcome("persistence", persistence),
        outcome("seasonal_naive", seasonal),
        outcome(
            "stateful",
            neural,
            layout="stream layout: 1 stream(s) per series",
            final_loss=np.array([0.1, 0.2])[:seeds],
            spec=config.models[0],
        ),
    )
    return compare.CompareResult(
        config=config,
        outcomes=outcomes,
        actual=actual,
        origins=origins,
        targets=targets,
        index=index,
        series_names=("sales",),
        feature_names=(),
        n_train=n_train,
        n_test=steps - n_train,
        seconds=1.0,
        notes=("a hand-built result",),
    )


def test_compare_report_files_and_their_contents(tmp_path):
    result = compare_result()
    files = write_compare_report(result, tmp_path)
    for key in ("forecast_plot", "rmse_plot", "rmse_per_step_plot"):
        assert_png(files[key])
    with files["metrics"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == (2 + 2) * (1 + 3)  # baselines one row each, the model one per seed
    seed_1 = [r for r in rows if r["model"] == "stateful" and r["seed"] == "1"]
    assert [r["step"] for r in seed_1] == ["all", "1", "2", "3"]
    assert float(seed_1[0]["rmse"]) == pytest.approx(1.5)  # seed 1's forecasts are off by -1.5
    assert float(seed_1[3]["mae"]) == pytest.approx(1.5)
    summary = json.loads(files["summary"].read_text())
    assert summary == json.loads(json.dumps(summary))
    assert summary["best"] == "stateful"
    assert summary["models"]["stateful"]["rmse_mean"] == pytest.approx(1.0)
    assert summary["models"]["stateful"]["rmse_std"] == pytest.approx(np.std([0.5, 1.5], ddof=1))
    assert summary["models"]["seasonal_naive"]["rmse_mean"] == pytest.approx(12.0)
    assert summary["models"]["persistence"]["rmse_vs_persistence"] == 0.0
    assert summary["config"]["horizon"] == 3 and summary["first_origin"] == "2003-05-01 00:00:00"
    report = files["report"].read_text()
    assert "**Best model: stateful** (`stateful`)" in report
    for outcome in result.outcomes:
        assert f"{100 * result.relative_to_persistence(outcome.name):+.1f}%" in report
    assert "## Test RMSE per step ahead" in report and "t+3" in report
    assert "![forecasts](forecasts.png)" in report and "- a hand-built result" in report


def test_compare_report_of_one_step_has_no_per_step_figure(tmp_path):
    files = write_compare_report(compare_result(horizon=1, seeds=1), tmp_path)
    assert "rmse_per_step_plot" not in files and not (tmp_path / "rmse_per_step.png").exists()
    assert "t+1" not in files["report"].read_text()
    assert compare_summary(compare_result(horizon=1, seeds=1))["best"] == "stateful"
