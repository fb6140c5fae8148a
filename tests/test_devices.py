import re

import jax
import jax.numpy as jnp
import pytest

from lstmlab import devices
from lstmlab.devices import on_device, resolve_device

NO_GPU = pytest.mark.skipif(
    bool(devices._devices("gpu")), reason="this machine has a GPU; the CPU fallback is tested"
)


@NO_GPU
def test_auto_falls_back_to_the_cpu_without_a_gpu():
    assert resolve_device("auto") == jax.devices("cpu")[0]
    assert resolve_device() == jax.devices("cpu")[0]


def test_cpu_is_the_first_cpu_device():
    assert resolve_device("cpu") == jax.devices("cpu")[0]


@NO_GPU
def test_gpu_without_a_gpu_says_how_to_install_the_cuda_build():
    expected = (
        "--device gpu was requested but no GPU is visible to JAX (its backend is 'cpu'); "
        'install JAX\'s CUDA build with pip install -U "jax[cuda12]" on a machine with an '
        "NVIDIA GPU and driver, or pass --device cpu or --device auto"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        resolve_device("gpu")


def test_unknown_device_names_the_choices():
    expected = "device must be one of ('cpu', 'gpu', 'auto'), got 'tpu'; pass e.g. --device auto"
    with pytest.raises(ValueError, match=re.escape(expected)):
        resolve_device("tpu")


def test_auto_and_gpu_pick_the_first_gpu_when_jax_sees_one(monkeypatch):
    fake_gpus = ["gpu:0", "gpu:1"]
    real = devices._devices
    monkeypatch.setattr(
        devices, "_devices", lambda platform: fake_gpus if platform == "gpu" else real(platform)
    )
    assert resolve_device("auto") == "gpu:0"
    assert resolve_device("gpu") == "gpu:0"
    assert resolve_device("cpu") == jax.devices("cpu")[0]


def test_on_device_places_new_arrays_and_restores_the_default():
    cpu = jax.devices("cpu")[0]
    with on_device("cpu") as device:
        inside = jnp.arange(3.0) * 2
    assert device == cpu
    assert inside.devices() == {cpu}
    assert jax.config.jax_default_device is None


@NO_GPU
def test_on_device_gpu_fails_before_the_body_runs():
    ran = []
    with pytest.raises(ValueError, match="no GPU is visible to JAX"):
        with on_device("gpu"):
            ran.append(True)
    assert ran == []
