"""Tests of the ``compare`` subcommand (lstmlab.commands_compare)."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from lstmlab import cli, commands_compare
from lstmlab.commands_compare import add_compare_command, compare_config
from lstmlab.data.loaders import DownloadError


def main(argv):
    """``lstmlab compare ARGS`` through the real command line."""
    return cli.main(["compare", *argv])

FAST = ["--epochs", "1", "--seeds", "1", "--window", "2", "--quiet"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lstmlab")
    add_compare_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["compare", *argv])


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
            "--season",
            "12",
            "--seeds",
            "2",
        ]
    )
    config = compare_config(args)
    assert {(m.window, m.epochs) for m in config.models} == {(5, 7)}
    assert (config.horizon, config.strategy, config.split, config.season, config.seeds) == (
        3,
        "direct",
        0.8,
        12,
        2,
    )


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


@pytest.mark.slow
def test_csv_end_to_end(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    out = tmp_path / "run"
    code = main(
        [
            str(data),
            "--time-col",
            "when",
            "--target",
            "load",
            "--features",
            "temperature",
            "--season",
            "7",
            "--horizon",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            *FAST,
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
    report = (out / "report.md").read_text()
    assert "load (target): 1 missing as read, 1 before the policy; 1 interpolated" in report
    assert "observed future values of the extra features ['temperature']" in report
    assert f"best: {summary['models'][summary['best']]['label']}" in capsys.readouterr().out


def test_csv_without_target_is_an_error(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    assert main([str(data), "--out", str(tmp_path / "run"), *FAST]) == 2
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
    assert main([str(data), "--target", "load", "--out", str(out), *FAST]) == 2
    assert "already holds an earlier run; pass --overwrite" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "earlier"


def test_missing_policy_error_reaches_the_user(tmp_path, capsys):
    data = tmp_path / "load.csv"
    write_csv(data)
    code = main(
        [str(data), "--target", "load", "--missing", "error", "--out", str(tmp_path / "run"), *FAST]
    )
    assert code == 2
    assert "missing" in capsys.readouterr().err


def test_format_options_are_checked(tmp_path, capsys):
    days = tmp_path / "days.csv"
    days.write_text("datetime,Global_active_power\n2007-01-01,1.0\n2007-01-02,2.0\n")
    assert main([str(days), "--time-col", "datetime", "--out", str(tmp_path / "r"), *FAST]) == 2
    assert "--time-col and --freq are for plain CSV files" in capsys.readouterr().err


def test_no_data_is_an_error(capsys):
    assert main(FAST) == 2
    assert "no DATA given; pass a data file, a --preset, or --download" in capsys.readouterr().err


def test_download_failure_is_reported(tmp_path, monkeypatch, capsys):
    def offline(cache_dir=None):
        raise DownloadError("could not download the archive; the network may be unavailable")

    monkeypatch.setattr(commands_compare, "download_electricity_diagrams", offline)
    code = main(["--download", "--out", str(tmp_path / "run"), *FAST])
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
    code = main(
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
def test_preset_without_data_reads_the_shared_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMLAB_DATA", str(data_dir))
    out = tmp_path / "run"
    assert (
        main(
            [
                "--preset",
                "airline-classic",
                "--epochs",
                "1",
                "--seeds",
                "1",
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
    assert "| stateful LSTM(4), window 3, batch 1 | 52.2 | `stateful` not run |" in report


def test_registered_in_the_lstmlab_cli(tmp_path):
    from lstmlab.cli import build_parser

    args = build_parser().parse_args(["compare", "x.csv", "--target", "a", "--horizon", "2"])
    assert args.handler is commands_compare.run_compare_command
    assert args.horizon == 2
