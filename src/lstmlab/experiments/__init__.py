"""Experiments: ``run(config) -> frozen result``; no plotting here."""

__all__: list[str] = []
