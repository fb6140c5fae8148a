"""Reports: PNG figures (``plots``) and Markdown/JSON writers (``markdown``)."""

from lstmlab.report.markdown import (
    format_number,
    image,
    json_ready,
    table,
    write_convergence_report,
    write_json,
    write_markdown,
    write_moving_average_report,
)
from lstmlab.report.plots import (
    plot_heatmap,
    plot_history,
    plot_input_vs_expected,
    plot_residuals,
)

__all__ = [
    "format_number",
    "image",
    "json_ready",
    "plot_heatmap",
    "plot_history",
    "plot_input_vs_expected",
    "plot_residuals",
    "table",
    "write_convergence_report",
    "write_json",
    "write_markdown",
    "write_moving_average_report",
]
