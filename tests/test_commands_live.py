import argparse
import json

import numpy as np
import pandas as pd
import pytest

from lstmlab.cli import main
from lstmlab.commands_live import add_live_commands
from lstmlab.persist import folder_checksum
from lstmlab.streaming import Forecaster

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
            "--target",
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
            "--save",
            str(model),
            "--quiet",
        ]
    )
    assert code == 0
    return model


def test_parser_registers_three_subcommands():
    parser = argparse.ArgumentParser()
    add_live_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--model", "m", "--port", "0"])
    assert (args.command, args.port, args.host) == ("serve", 0, "127.0.0.1")
    args = parser.parse_args(["observe", "--model", "m", "--series", "a", "--input", "x.csv"])
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
        expected = model.replay(frame[name].iloc[:ROWS].to_numpy())[-1]
        np.testing.assert_allclose(model.forecast(name).values[0], expected, rtol=1e-6)


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
        "--save",
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
            "--save",
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
            "--save",
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
    argv += ["--missing", "drop", "--epochs", "1", "--save", str(tmp_path / "m"), "--quiet"]
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
    assert main([*argv, "--save", str(tmp_path / "m"), "--quiet"]) == 0
    assert "final loss none (no epochs)" in capsys.readouterr().out
    assert Forecaster.load(tmp_path / "m").metrics["final_loss"] is None


def test_observe_advances_the_saved_state(fitted, data, tmp_path, capsys):
    folder, frame = data
    model = tmp_path / "m"
    Forecaster.load(fitted).save(model)
    reference = Forecaster.load(model)
    expected = reference.observe(
        "a",
        frame["a"].iloc[ROWS:].to_numpy(),
        frame["time"].iloc[ROWS:].astype(str).tolist(),
        horizon=2,
    )
    code = main(
        [
            "observe",
            "--model",
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
    np.testing.assert_array_equal(saved.forecast("a", 2).values, expected.values)
    # the same readings again are out of time order: error, nothing saved
    before = folder_checksum(model)
    code = main(
        ["observe", "--model", str(model), "--series", "a", "--input", str(folder / "new.csv")]
    )
    assert code == 2
    assert "is out of time order" in capsys.readouterr().err
    assert folder_checksum(model) == before


def test_observe_new_series_and_bad_input(fitted, data, tmp_path, capsys):
    folder, _ = data
    model = tmp_path / "m"
    Forecaster.load(fitted).save(model)
    pd.DataFrame({"time": ["2024-02-01 00:00", "2024-02-01 00:15"], "x": [1.0, 2.0]}).to_csv(
        tmp_path / "fresh.csv", index=False
    )
    assert (
        main(
            [
                "observe",
                "--model",
                str(model),
                "--series",
                "x",
                "--input",
                str(tmp_path / "fresh.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "series x: 2 reading(s) observed, 2 in all" in out
    assert "2024-02-01T00:30:00" in out
    pd.DataFrame({"time": ["2024-02-01 00:30"], "x": ["oops"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    assert (
        main(
            [
                "observe",
                "--model",
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
                "--model",
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
    from lstmlab.cli import build_parser

    args = build_parser().parse_args(["fit", "data.csv", "--target", "x", "--save", "m"])
    assert (args.handler.__name__, args.model, args.targets) == ("run_fit", "stateful", ["x"])
