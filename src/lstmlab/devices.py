"""Where computation runs: ``--device cpu|gpu|auto``, resolved to a ``jax.Device``.

``auto`` (the default) picks the first GPU JAX can see and falls back to the CPU, so the
same command trains on a GPU machine with JAX's CUDA build and on a laptop without any code
change. ``gpu`` without a visible GPU is an error that says how to get one, never a silent
CPU run. ``on_device`` places the computation: arrays created and programs compiled inside
it live on that device (``jax.default_device``).
"""

import argparse
import contextlib
from collections.abc import Iterator

import jax

DEVICES = ("cpu", "gpu", "auto")
CUDA_INSTALL = 'pip install -U "jax[cuda12]"'


def _devices(platform: str) -> list[jax.Device]:
    """JAX's devices of one platform, or ``[]`` when its backend is not available."""
    try:
        return list(jax.devices(platform))
    except RuntimeError:  # JAX raises when no backend of that platform was initialised
        return []


def resolve_device(name: str = "auto") -> jax.Device:
    """The device a ``--device`` value names.

    Args:
        name: ``"cpu"``, ``"gpu"`` (the first GPU) or ``"auto"`` (the first GPU if JAX sees
            one, else the first CPU).

    Returns:
        The ``jax.Device``.

    Raises:
        ValueError: an unknown name, or ``"gpu"`` when JAX sees no GPU.

    Example:
        >>> resolve_device("cpu").platform
        'cpu'
    """
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}; pass e.g. --device auto")
    if name in ("gpu", "auto"):
        gpus = _devices("gpu")
        if gpus:
            return gpus[0]
        if name == "gpu":
            raise ValueError(
                f"--device gpu was requested but no GPU is visible to JAX (its backend is "
                f"{jax.default_backend()!r}); install JAX's CUDA build with {CUDA_INSTALL} on a "
                "machine with an NVIDIA GPU and driver, or pass --device cpu or --device auto"
            )
    return _devices("cpu")[0]


@contextlib.contextmanager
def on_device(name: str = "auto") -> Iterator[jax.Device]:
    """Run the body with ``resolve_device(name)`` as JAX's default device.

    Args:
        name: as ``resolve_device``.

    Yields:
        The device.

    Raises:
        ValueError: as ``resolve_device`` (before the body runs).

    Example:
        >>> import jax.numpy as jnp
        >>> with on_device("cpu") as device:
        ...     x = jnp.ones(3)
        >>> x.devices() == {device}
        True
    """
    device = resolve_device(name)
    with jax.default_device(device):
        yield device


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--device cpu|gpu|auto`` (default ``auto``) to a command's parser.

    The handler then runs its library call inside ``with on_device(args.device):``.

    Args:
        parser: the subcommand's parser.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_device_argument(parser)
        >>> parser.parse_args([]).device, parser.parse_args(["--device", "cpu"]).device
        ('auto', 'cpu')
    """
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to train and predict: the first GPU JAX sees if any (auto), or cpu, gpu",
    )
