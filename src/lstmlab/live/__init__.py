"""Live series: the per-series state store and the HTTP forecasting service."""

__all__: list[str] = []
