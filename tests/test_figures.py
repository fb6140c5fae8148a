import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lstmlab.report.documents import format_number, image, json_ready, table, write_json
from lstmlab.report.figures import (
    plot_heatmap,
    plot_history,
    plot_input_vs_expected,
    plot_residuals,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=8_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def test_plots_write_pngs_and_close_their_figures(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    before = set(plt.get_fignums())
    assert_png(plot_input_vs_expected(y, y / 2, tmp_path / "a.png", tsteps=2))
    assert_png(plot_residuals(y, y + 0.01, y * 0.5, tmp_path / "b.png", tsteps=3))
    assert_png(plot_history({"m": ([1.0, 0.5], [1.1, 0.6]), "n": ([2.0, 1.0], None)},
                            tmp_path / "c.png", reference=0.1))
    assert_png(plot_heatmap(rng.uniform(size=(2, 3)), tmp_path / "d.png", rows=[1, 2],
                            columns=[1, 2, 3], title="t", row_label="r", column_label="c",
                            colorbar_label="v", outlined=np.eye(2, 3, dtype=bool)))
    assert_png(plot_heatmap(np.array([[1e-5, 1e-2]]), tmp_path / "e.png", rows=[1],
                            columns=[1, 2], title="t", row_label="r", column_label="c",
                            colorbar_label="v", log=True))
    assert set(plt.get_fignums()) == before


def test_heatmap_rejects_a_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"values must have shape \(len\(rows\), len\(columns\)\) "
                                         r"= \(2, 2\), got \(2, 3\)"):
        plot_heatmap(np.zeros((2, 3)), tmp_path / "x.png", rows=[1, 2], columns=[1, 2],
                     title="t", row_label="r", column_label="c", colorbar_label="v")
    assert not (tmp_path / "x.png").exists()
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.000123456, "1.23e-04"), (12.3456, "12.3"), (0, "0"), (7, "7"), (True, "yes"),
     (None, "n/a"), (float("nan"), "n/a"), (123456.0, "1.23e+05"), (0.5, "0.5")],
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
        ConvergenceConfig(tsteps=(2,), lahead=(3,)))
