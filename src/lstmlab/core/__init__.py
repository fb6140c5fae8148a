"""The core: layers, models, the training driver and the rollout; imports nothing above it."""

__all__: list[str] = []
