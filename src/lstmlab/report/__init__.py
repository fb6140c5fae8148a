"""Reports: ``figures`` (matplotlib Figure objects) and ``documents`` (every report writer)."""

__all__: list[str] = []
