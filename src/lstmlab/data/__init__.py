"""Data: layouts (windows, batches, streams), loading (CSV/DataFrame, UCI readers), scaling."""

__all__: list[str] = []
