import json
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lstmlab.report.documents import format_number, image, json_ready, table, write_json
from lstmlab.report.figures import (
    plot_compare_forecasts,
    plot_compare_rmse,
    plot_compare_rmse_per_step,
    plot_heatmap,
    plot_history,
    plot_input_vs_expected,
    plot_residuals,
    save_figure,
)
from tests.test_documents import every_seed_flagged, flagged_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=8_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def test_plots_return_figures_that_save_as_pngs_outside_pyplot(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    before = set(plt.get_fignums())
    figures = {
        "a": plot_input_vs_expected(y, y / 2, tsteps=2),
        "b": plot_residuals(y, y + 0.01, y * 0.5, tsteps=3),
        "c": plot_history({"m": ([1.0, 0.5], [1.1, 0.6]), "n": ([2.0, 1.0], None)}, reference=0.1),
        "d": plot_heatmap(
            rng.uniform(size=(2, 3)),
            rows=[1, 2],
            columns=[1, 2, 3],
            title="t",
            row_label="r",
            column_label="c",
            colorbar_label="v",
            outlined=np.eye(2, 3, dtype=bool),
        ),
        "e": plot_heatmap(
            np.array([[1e-5, 1e-2]]),
            rows=[1],
            columns=[1, 2],
            title="t",
            row_label="r",
            column_label="c",
            colorbar_label="v",
            log=True,
        ),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure)
        path = tmp_path / "sub" / f"{name}.png"
        assert save_figure(fig, path) == path
        assert_png(path)
    # never registered with pyplot: nothing to close, nothing left open
    assert set(plt.get_fignums()) == before


def test_figures_carry_their_titles_and_lines():
    y = np.arange(20.0)
    fig = plot_residuals(y, y + 1.0, y - 2.0, tsteps=3, labels=("stateful", "stateless"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Expected output (test part)",
        "Stateful: expected - predicted",
        "Stateless: expected - predicted",
    ]
    # the stateful panel draws the first tsteps - 1 points, which the script drops, in grey
    assert len(fig.axes[1].lines[0].get_xdata()) == 18
    assert fig.axes[1].lines[1].get_xdata().tolist() == [0, 1, 2]  # joined to the rest
    np.testing.assert_array_equal(fig.axes[2].lines[0].get_ydata(), np.full(20, 2.0))
    # each panel states the MSE over every test point, the report's
    stateful_error = np.r_[np.full(2, 5.0), np.full(18, -1.0)]
    fig = plot_residuals(y, y - stateful_error, y - 2.0, tsteps=3)
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend[0] == f"stateful (test MSE {np.mean(stateful_error**2):.2e})"  # 3.40e+00
    assert legend[1] == "the first 2 points, which the script omits"
    one = plot_residuals(y, y - stateful_error, y - 2.0, tsteps=2)
    assert one.axes[1].get_legend().get_texts()[1].get_text() == (
        "the first point, which the script omits"
    )
    # the legends sit beside the residual panels, off the data; the top panel's one line is
    # named by its title
    assert fig.axes[0].get_legend() is None
    for ax in fig.axes[1:]:
        fig.canvas.draw()
        box = ax.get_legend().get_window_extent().transformed(ax.transAxes.inverted())
        assert box.x0 > 1.0, box  # right of the axes
    history = plot_history({"m": ([1.0, 0.5], None)}, reference=0.1, reference_label="goal")
    assert [t.get_text() for t in history.axes[0].get_legend().get_texts()] == ["m loss", "goal"]
    inputs = plot_input_vs_expected(y[:5], y[:5], tsteps=2)
    for figure in (history, inputs):  # beside the axes as well
        figure.canvas.draw()
        ax = figure.axes[0]
        box = ax.get_legend().get_window_extent().transformed(ax.transAxes.inverted())
        assert box.x0 > 1.0, box


def test_importing_the_report_modules_keeps_the_matplotlib_backend():
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import lstmlab.report.figures, lstmlab.report.documents; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_heatmap_rejects_a_wrong_shape():
    with pytest.raises(
        ValueError,
        match=r"values must have shape \(len\(rows\), len\(columns\)\) "
        r"= \(2, 2\), got \(2, 3\)",
    ):
        plot_heatmap(
            np.zeros((2, 3)),
            rows=[1, 2],
            columns=[1, 2],
            title="t",
            row_label="r",
            column_label="c",
            colorbar_label="v",
        )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.000123456, "1.23e-04"),
        (12.3456, "12.3"),
        (0, "0"),
        (7, "7"),
        (True, "yes"),
        (None, "n/a"),
        (float("nan"), "n/a"),
        (123456.0, "1.23e+05"),
        (0.5, "0.5"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_table_and_image_links(tmp_path):
    text = table(["a", "b|c"], [["x", 1e-5], ["y", 2]])
    assert text.splitlines() == ["| a | b\\|c |", "|:--|--:|", "| x | 1.00e-05 |", "| y | 2 |"]
    with pytest.raises(ValueError, match="row 0 has 1 cells, the table has 2 columns"):
        table(["a", "b"], [["x"]])
    assert image("plot", tmp_path / "sub" / "p.png", tmp_path) == "![plot](sub/p.png)"


def test_json_ready_makes_strict_json(tmp_path):
    data = {"a": np.float32(0.5), "b": (1, np.int64(2)), "c": float("nan"), "d": np.arange(2)}
    assert json_ready(data) == {"a": 0.5, "b": [1, 2], "c": None, "d": [0, 1]}
    path = write_json(tmp_path / "s.json", data)
    assert json.loads(path.read_text())["c"] is None


def test_convergence_reading_notes_follow_the_grid_and_threshold():
    from lstmlab.experiments.convergence import ConvergenceConfig
    from lstmlab.report.documents import _reading_notes

    default = _reading_notes(ConvergenceConfig())
    assert "(at least 0.167 in this grid, above the threshold of 0.1), so a stateless" in default
    # tsteps 20, lahead 19: the memoryless floor is 1/20, below a threshold of 0.1.
    wide = _reading_notes(ConvergenceConfig(tsteps=(20,), lahead=(19,), threshold=0.1))
    assert "(at least 0.05 in this grid, not above the threshold of 0.1)" in wide
    assert "cannot converge" not in wide
    assert "no cell of this grid has lahead < tsteps" in _reading_notes(
        ConvergenceConfig(tsteps=(2,), lahead=(3,))
    )


# --------------------------------------------------------------------------- compare


def _rmse(forecasts, actual):
    return np.sqrt(np.mean((forecasts - actual[None]) ** 2, axis=(1, 2, 3)))


def test_compare_rmse_plot_leaves_flagged_seeds_out():
    result = flagged_result()
    fig = plot_compare_rmse(result)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == [o.name for o in result.outcomes]
    # one bar per model: neural ones at the mean of their kept seeds
    heights = [bar.get_height() for bar in ax.patches if isinstance(bar, Rectangle)]
    stateless = _rmse(result.outcome("stateless").forecasts[:2], result.actual)
    stateful = _rmse(result.outcome("stateful").forecasts, result.actual)
    assert heights[names.index("stateless")] == pytest.approx(stateless.mean())
    assert heights[names.index("stateful")] == pytest.approx(stateful.mean())
    assert heights[names.index("seasonal_naive")] == pytest.approx(12.0)
    # the seed dots: the kept seeds only; no exploded value anywhere on the axes
    dots = {line.get_label(): line for line in ax.lines}
    seed_lines = [line for line in ax.lines if line.get_marker() == "o"]
    assert [len(line.get_ydata()) for line in seed_lines] == [4, 2]
    np.testing.assert_allclose(seed_lines[1].get_ydata(), stateless)
    np.testing.assert_allclose(seed_lines[0].get_ydata(), stateful)
    for line in ax.lines:
        assert np.all(np.asarray(line.get_ydata(), dtype=float) < 1e3)
    assert ax.get_ylim()[1] < 1e3
    assert "seeds (kept)" in dots and "published (one run)" in dots
    assert [t.get_text() for t in ax.texts] == ["2 flagged"]


def test_compare_forecast_plot_draws_the_seed_medians_the_best_baseline_and_a_band():
    result = flagged_result(horizon=1)
    fig = plot_compare_forecasts(result)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    median = result.outcome("stateful_median")
    stateless = f"stateless median (RMSE {result.outcome('stateless_median').mean('rmse'):.3g})"
    assert list(lines) == [
        "actual",
        f"seasonal naive (RMSE {12.0:.3g})",
        f"stateful median (RMSE {median.mean('rmse'):.3g})",
        stateless,
    ]
    # the stateless median is drawn from its kept seeds: finite everywhere
    kept = np.median(result.outcome("stateless").forecasts[:2], axis=0)[:, 0, 0]
    np.testing.assert_allclose(lines[stateless].get_ydata(), kept)
    (band,) = ax.collections
    assert band.get_label().startswith("stateful_median: 90% interval (coverage ")
    # the band spans the best-validated median's interval
    vertices = band.get_paths()[0].vertices[:, 1]
    assert vertices.min() == pytest.approx(median.lower.min())
    assert vertices.max() == pytest.approx(median.upper.max())


@pytest.mark.parametrize(
    ("origins", "horizon", "runs"),
    [
        (range(10), 1, [list(range(10))]),  # one step ahead: every origin, one line
        (range(10), 3, [[0, 3, 6, 9]]),  # overlapping paths: every third, joined end to start
        ([10, 22, 34], 12, [[0, 1, 2]]),  # a path per fold, each right after the one before
        ([0, 20, 21], 12, [[0], [1]]),  # a gap: two runs, never joined
    ],
)
def test_the_forecast_plot_draws_whole_paths_that_never_overlap(origins, horizon, runs):
    from lstmlab.report.figures import _compare_paths

    got = _compare_paths(np.asarray(origins), horizon)
    assert [run.tolist() for run in got] == runs


def test_a_multi_step_forecast_plot_draws_the_paths_that_were_scored():
    result = flagged_result(horizon=2)
    ax = plot_compare_forecasts(result).axes[0]
    name = f"stateless median (RMSE {result.outcome('stateless_median').mean('rmse'):.3g})"
    (line,) = [line for line in ax.lines if line.get_label() == name]
    # the reference: the kept seeds' median, origin by origin, both steps of every other one
    kept = np.median(result.outcome("stateless").forecasts[:2], axis=0)[:, :, 0]  # (o, 2)
    origins = result.origins
    assert np.all(np.diff(origins) == 1)  # overlapping paths: every other origin is drawn
    np.testing.assert_allclose(line.get_ydata(), kept[::2].ravel())
    x = np.asarray(line.get_xdata())
    assert len(x) == 2 * len(origins[::2]) and len(set(x.tolist())) == len(x)
    assert "2-step forecasts (every path of" in ax.get_title()


def test_compare_rmse_per_step_plot_averages_the_kept_seeds():
    result = flagged_result(horizon=2)
    fig = plot_compare_rmse_per_step(result)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    forecasts = result.outcome("stateless").forecasts[:2]
    per_step = np.sqrt(np.mean((forecasts - result.actual[None]) ** 2, axis=(1, 3)))
    np.testing.assert_allclose(lines["stateless"].get_ydata(), per_step.mean(axis=0))
    assert len(lines) == len(result.outcomes)
    fig.canvas.draw()  # the ticks of two steps are whole numbers, not 1.25 and 1.75
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks)


def test_compare_rmse_plot_of_a_model_with_every_seed_flagged_draws_no_bar():
    result = every_seed_flagged(flagged_result())
    ax = plot_compare_rmse(result).axes[0]
    heights = [bar.get_height() for bar in ax.patches if isinstance(bar, Rectangle)]
    assert len(heights) == len(result.outcomes) - 2  # stateless and its median have none
    assert [t.get_text() for t in ax.texts] == ["all flagged"]
    assert ax.get_ylim()[1] < 1e3
