"""Experiments: ``run(config) -> frozen result``; no plotting here."""
