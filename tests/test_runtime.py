import re
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from lstmlab import runtime as devices
from lstmlab.cli import main
from lstmlab.experiments import compare, convergence
from lstmlab.experiments.compare import CompareConfig, ModelSpec
from lstmlab.report.documents import write_convergence_report
from lstmlab.runtime import (
    LocalExecutor,
    RayExecutor,
    epoch_progress,
    make_executor,
    on_device,
    resolve_device,
    start_local_ray,
)

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


NO_RAY = (
    "--executor ray needs Ray, which is not installed; install it with "
    "pip install 'lstmlab[ray]' or pass --executor local"
)
GRID = convergence.ConvergenceConfig(tsteps=(1, 2), lahead=(1,), seeds=2, epochs=2, input_len=200)
COMPARE = CompareConfig(
    models=(
        ModelSpec(
            model="mlp",
            units=(4,),
            window=3,
            epochs=3,
            batch_size=4,
            shuffle=True,
            label="mlp",
            norm="none",
        ),
        ModelSpec(
            model="stateful",
            units=(3,),
            window=3,
            epochs=3,
            batch_size=2,
            label="stateful",
            norm="none",
        ),
    ),
    seeds=2,
    seasons=(12,),
    baselines=("persistence", "seasonal_naive"),
    validation=0.0,
)


def random_walk(n: int = 120) -> np.ndarray:
    return 100.0 + np.cumsum(np.random.default_rng(3).normal(0.0, 1.0, n))


# --------------------------------------------------------------------------- local


def test_local_executor_returns_results_in_task_order_and_reports_each():
    seen = []
    with LocalExecutor() as executor:
        results = executor.map(
            divmod, [(7, 2), (9, 4), (5, 5)], on_result=lambda i, r: seen.append((i, r))
        )
    assert results == [(3, 1), (2, 1), (1, 0)]
    assert seen == [(0, (3, 1)), (1, (2, 1)), (2, (1, 0))]


def test_make_executor_rejects_unknown_names():
    expected = (
        "executor must be one of ('local', 'ray'), got 'dask'; pass --executor local or "
        "--executor ray"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        make_executor("dask")


def test_ray_address_needs_the_ray_executor():
    expected = (
        "--ray-address auto only applies to --executor ray; pass --executor ray or drop "
        "--ray-address"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        make_executor("local", ray_address="auto")


def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ValueError, match=re.escape(NO_RAY)):
        make_executor("ray")


def test_cli_convergence_with_ray_missing_exits_2_with_the_install_hint(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["convergence", "--executor", "ray", "--out", str(tmp_path / "run")])
    assert code == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_RAY}\n"
    assert not (tmp_path / "run").exists()  # failed before creating the run folder


def test_cli_compare_with_ray_missing_exits_2_with_the_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    data = tmp_path / "series.csv"
    days = pd.date_range("2001-01-01", periods=40, freq="D")
    pd.DataFrame({"value": random_walk(40)}, index=days).to_csv(data, index_label="day")
    out = tmp_path / "run"
    code = main(["compare", str(data), "--target", "value", "--executor", "ray", "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_RAY}\n"
    assert not out.exists()  # failed before creating the run folder


# --------------------------------------------------------------------------- ray, faked


class _FakeRay(types.ModuleType):
    """Records what RayExecutor asks of Ray; runs tasks inline, finishing them in reverse."""

    def __init__(self, initialized: bool):
        super().__init__("ray")
        self.initialized = initialized
        self.calls: list = []

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        self.initialized = True

    def shutdown(self):
        self.calls.append(("shutdown",))
        self.initialized = False

    def remote(self, **options):
        def wrap(fn):
            return types.SimpleNamespace(remote=lambda *args: ("ref", fn(*args), len(self.calls)))

        self.calls.append(("remote", options))
        return wrap

    def wait(self, pending, num_returns):
        return [pending[-1]], pending[:-1]  # the last submitted finishes first

    def get(self, ref):
        return ref[1]


def test_ray_executor_starts_a_loopback_runtime_and_shuts_down_only_its_own(monkeypatch):
    fake = _FakeRay(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", fake)
    seen = []
    with RayExecutor(num_cpus=2) as executor:
        results = executor.map(pow, [(2, 3), (3, 2), (5, 1)], on_result=lambda i, r: seen.append(i))
    assert results == [8, 9, 5]  # task order, although they finished in reverse
    assert seen == [2, 1, 0]
    assert fake.calls == [
        (
            "init",
            {
                "num_cpus": 2,
                "include_dashboard": False,
                "_node_ip_address": "127.0.0.1",
                "log_to_driver": False,
                "configure_logging": False,
            },
        ),
        ("remote", {"num_cpus": 1}),
        ("shutdown",),
    ]


def test_ray_executor_connects_to_an_address_and_leaves_a_running_runtime_alone(monkeypatch):
    fake = _FakeRay(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with RayExecutor("ray://head:10001") as executor:
        executor.map(pow, [(2, 2)])
    assert fake.calls[0] == (
        "init",
        {"address": "ray://head:10001", "log_to_driver": False, "configure_logging": False},
    )
    assert fake.calls[-1] == ("shutdown",)

    running = _FakeRay(initialized=True)
    monkeypatch.setitem(sys.modules, "ray", running)
    with RayExecutor() as executor:
        assert executor.map(pow, [(3, 3)]) == [27]
    assert running.calls == [("remote", {"num_cpus": 1})]  # no init, no shutdown
    assert running.initialized


# --------------------------------------------------------------------------- ray, real


@pytest.fixture(scope="module")
def ray_runtime():
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'lstmlab[ray]'")
    ray = start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_result():
    return convergence.run(GRID, quiet=True)


@pytest.mark.slow
def test_ray_executor_gives_the_local_rows_bit_for_bit(ray_runtime, local_result):
    groups = []
    with make_executor("ray") as executor:
        result = convergence.run(
            GRID, quiet=True, executor=executor, on_group=lambda cells: groups.append(cells)
        )
    assert ray_runtime.is_initialized()  # the test's runtime is left running
    assert groups == [2]  # one report per lahead column, 2 tsteps each
    assert len(result.rows) == 2 * 2 * 2  # mode x tsteps x seed
    assert result.rows == local_result.rows  # every float equal, in the same order
    # the equality is not vacuous: seeds and cells do give different numbers
    assert len({row.test_mse for row in local_result.rows}) == len(local_result.rows)


@pytest.mark.slow
def test_cli_convergence_with_ray_writes_the_local_grid(
    ray_runtime, local_result, tmp_path, capsys
):
    args = [
        "convergence",
        "--tsteps",
        "1,2",
        "--lahead",
        "1",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--input-len",
        "200",
        "--quiet",
        "--executor",
        "ray",
        "--out",
        str(tmp_path / "ray"),
    ]
    assert main(args) == 0
    capsys.readouterr()
    (tmp_path / "local").mkdir()
    write_convergence_report(local_result, tmp_path / "local")
    ray_grid = (tmp_path / "ray" / "grid.csv").read_text()
    assert ray_grid == (tmp_path / "local" / "grid.csv").read_text()
    assert len(pd.read_csv(tmp_path / "ray" / "grid.csv")) == 8


@pytest.mark.slow
def test_ray_compare_gives_the_local_forecasts_and_metrics_bit_for_bit(ray_runtime):
    series = random_walk()
    local_lines, ray_lines = [], []
    local = compare.run(COMPARE, series, quiet=True, log=local_lines.append)
    with make_executor("ray") as executor:
        remote = compare.run(COMPARE, series, quiet=True, log=ray_lines.append, executor=executor)
    assert ray_runtime.is_initialized()  # the test's runtime is left running
    names = ["persistence", "seasonal_naive", "mlp", "mlp_median", "stateful", "stateful_median"]
    assert [o.name for o in remote.outcomes] == [o.name for o in local.outcomes] == names
    for ours, theirs in zip(remote.outcomes, local.outcomes, strict=True):
        np.testing.assert_array_equal(ours.forecasts, theirs.forecasts)
        assert ours.metrics.keys() == theirs.metrics.keys()
        for key, values in theirs.metrics.items():
            np.testing.assert_array_equal(ours.metrics[key], values, err_msg=key)
        np.testing.assert_array_equal(ours.final_loss, theirs.final_loss)
        assert (ours.label, ours.layout, ours.spec) == (theirs.label, theirs.layout, theirs.spec)
    # one log line per neural model, as each finishes (Ray: in completion order)
    assert [line.split(" (fold")[0] for line in local_lines if "(fold" in line] == [
        "mlp",
        "stateful",
    ]
    assert sorted(line.split(" (fold")[0] for line in ray_lines if "(fold" in line) == [
        "mlp",
        "stateful",
    ]
    # the equality is not vacuous: seeds and models do give different forecasts
    for name in ("mlp", "stateful"):
        forecasts = local.outcome(name).forecasts  # (seeds, origins, horizon, series)
        assert not np.array_equal(forecasts[0], forecasts[1])
    assert local.outcome("mlp").mean("rmse") != local.outcome("stateful").mean("rmse")


def test_progress_bar_shows_epochs_and_losses(capsys):
    with epoch_progress(3, "stateful") as progress:
        progress.advance(0.5)
        progress.advance(0.25, val_loss=0.125)
    err = capsys.readouterr().err
    assert "stateful" in err and "2/3" in err
    assert "loss 0.25" in err and "val_loss 0.125" in err


def test_quiet_prints_nothing(capsys):
    with epoch_progress(3, "stateful", quiet=True) as progress:
        progress.advance(0.5)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# --------------------------------------------------------------------------- compilation cache

# A short training and its predictions, in a fresh process (the cache is a per-process JAX
# setting); prints what the cache did as JSON and saves every array for a bit-for-bit check.
_CACHE_CHILD = """
import json, sys, warnings
import numpy as np
from jax import monitoring
counts = {"requests": 0, "hits": 0}
names = {"/jax/compilation_cache/compile_requests_use_cache": "requests",
         "/jax/compilation_cache/cache_hits": "hits"}
def count(name, **kwargs):
    if name in names:
        counts[names[name]] += 1
monitoring.register_event_listener(count)
from lstmlab import LSTMModel, runtime
if sys.argv[2] == "flag":
    runtime.configure_compile_cache(None)  # what --no-compile-cache calls
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    x = np.random.default_rng(0).uniform(-0.1, 0.1, (64, 2, 1)).astype(np.float32)
    model = LSTMModel(units=(6, 5), timesteps=2, batch_size=4, seed=3)
    history = model.fit(x[:48], x[:48, 0], epochs=3, validation_data=(x[48:], x[48:, 0]),
                        quiet=True)
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    arrays["loss"] = np.asarray(history.loss)
    arrays["val_loss"] = np.asarray(history.val_loss)
    arrays["prediction"] = model.predict(x)
np.savez(sys.argv[1], **arrays)
print(json.dumps({
    **counts,
    "dir": None if runtime.compile_cache_dir() is None else str(runtime.compile_cache_dir()),
    "ours": [str(w.message) for w in caught if issubclass(w.category, runtime.CompileCacheWarning)],
    "others": [str(w.message) for w in caught
               if not issubclass(w.category, runtime.CompileCacheWarning)],
}))
"""


def _cached_child(tmp_path, name: str, cache_setting: str, mode: str = "env"):
    import json
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME",)}
    env["LSTMLAB_CACHE_DIR"] = cache_setting
    env["HOME"] = str(tmp_path / "home")  # the default folder, were it used, stays in tmp_path
    out = tmp_path / f"{name}.npz"
    completed = subprocess.run(
        [sys.executable, "-c", _CACHE_CHILD, str(out), mode],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    with np.load(out) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return report, arrays


def _assert_bit_identical(left: dict, right: dict) -> None:
    assert sorted(left) == sorted(right)
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert left[key].tobytes() == right[key].tobytes(), key  # bit for bit, NaN included


def test_cached_and_uncached_runs_are_bit_identical_and_the_cache_is_read_back(tmp_path):
    cache = tmp_path / "moved" / "cache"  # LSTMLAB_CACHE_DIR moves the cache here
    # --no-compile-cache (configure_compile_cache(None)) wins over the variable: no folder.
    uncached, reference = _cached_child(tmp_path, "uncached", str(cache), mode="flag")
    assert uncached["dir"] is None and uncached["hits"] == 0
    assert not cache.exists()
    cold, cold_arrays = _cached_child(tmp_path, "cold", str(cache))
    assert cold["dir"] == str(cache.resolve()) and cold["hits"] == 0
    written = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    # every program of the run is written, the small ones too (JAX's default keeps only
    # programs that took a second to compile)
    assert len(written) == cold["requests"] > 3
    warm, warm_arrays = _cached_child(tmp_path, "warm", str(cache))
    assert warm["hits"] == warm["requests"] == cold["requests"]  # nothing compiled again
    for report in (uncached, cold, warm):
        assert report["ours"] == [] and report["others"] == []
    _assert_bit_identical(reference, cold_arrays)
    _assert_bit_identical(reference, warm_arrays)
    assert not (tmp_path / "home").exists()  # the default folder was not touched


def test_an_unusable_cache_folder_warns_once_and_the_run_goes_on(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    broken, arrays = _cached_child(tmp_path, "broken", str(blocker / "cache"))
    assert broken["dir"] is None and broken["hits"] == 0
    assert len(broken["ours"]) == 1 and broken["others"] == []
    assert f"{blocker / 'cache'} cannot be used" in broken["ours"][0]
    assert "LSTMLAB_CACHE_DIR to a writable folder" in broken["ours"][0]
    # LSTMLAB_CACHE_DIR=off: no cache, no folder, no warning; the same results
    off, reference = _cached_child(tmp_path, "uncached", "off")
    assert off["dir"] is None and off["hits"] == 0 and off["ours"] == off["others"] == []
    assert not (tmp_path / "home").exists()
    _assert_bit_identical(reference, arrays)


def test_default_cache_folder_follows_xdg_and_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("LSTMLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert devices.default_compile_cache_dir() == tmp_path / "xdg" / "lstmlab" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert devices.default_compile_cache_dir() == tmp_path / "home" / ".cache" / "lstmlab" / "jax"
    monkeypatch.setenv("LSTMLAB_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert devices.default_compile_cache_dir() == tmp_path / "elsewhere"
    for off in ("off", "OFF", " 0 ", "false", "no", "none"):
        monkeypatch.setenv("LSTMLAB_CACHE_DIR", off)
        assert devices.default_compile_cache_dir() is None
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()  # no side effect


def test_ensure_configures_once_and_keeps_an_explicit_choice(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(devices, "_SETTING", devices._CacheSetting())
    monkeypatch.setattr(
        devices, "configure_compile_cache", lambda path: calls.append(path) or path
    )
    monkeypatch.setenv("LSTMLAB_CACHE_DIR", str(tmp_path / "c"))
    assert devices.ensure_compile_cache() == tmp_path / "c"
    assert calls == [tmp_path / "c"]
    devices._SETTING.configured, devices._SETTING.path = True, None  # e.g. --no-compile-cache
    assert devices.ensure_compile_cache() is None
    assert calls == [tmp_path / "c"]


def test_import_in_background_loads_the_modules_and_leaves_errors_to_the_caller(tmp_path):
    import subprocess

    # In a fresh process: the modules must not be loaded before the thread loads them.
    code = (
        "import sys\n"
        "from lstmlab.runtime import import_in_background\n"
        "assert 'ftplib' not in sys.modules and 'wave' not in sys.modules\n"
        "loading = import_in_background('ftplib', 'lstmlab_no_such_module', 'wave')\n"
        "print(loading.result(60) is None, 'ftplib' in sys.modules, 'wave' in sys.modules)\n"
        "try:\n"
        "    import lstmlab_no_such_module\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    # A failed import is skipped quietly (the modules after it still load) and raised where
    # the caller imports it.
    assert done.stdout.split() == ["True", "True", "True", "lstmlab_no_such_module"]


def test_in_background_runs_on_another_thread_and_hands_back_the_result_or_the_error():
    import threading

    from lstmlab.runtime import in_background

    def work(value, *, twice):
        return threading.get_ident(), value * (2 if twice else 1)

    ident, value = in_background(work, 21, twice=True).result(60)
    assert value == 42 and ident != threading.get_ident()
    failing = in_background(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        failing.result(60)


def test_in_background_runs_under_the_callers_jax_default_device():
    # A per-thread JAX setting: a program compiled on the thread under another default
    # device would not be the one the caller's calls look up.
    import jax

    from lstmlab.runtime import in_background

    def seen():
        return jax.config.jax_default_device

    device = jax.devices("cpu")[0]
    with jax.default_device(device):
        assert in_background(seen).result(60) == device
    assert in_background(seen).result(60) is None


# --------------------------------------------------------------------------- program budgets


@pytest.mark.slow
@pytest.mark.xdist_group("readme")  # after the README test, whose programs it finds cached
def test_every_entry_point_compiles_within_its_program_budget():
    # A fresh process (tests/program_counts.py) counts, by JAX's compile events, the programs
    # each entry point compiles from an empty in-memory cache; more than its budget fails.
    import json
    import subprocess
    from pathlib import Path

    from conftest import shared_data_dir

    from tests.program_counts import PROGRAM_BUDGETS

    data = shared_data_dir()
    if data is None:
        pytest.skip(
            "shared data folder not found: set LSTMLAB_DATA or place ../shared/data beside the repo"
        )
    child = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "program_counts.py"), str(data)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    counts = json.loads(child.stdout.splitlines()[-1])
    assert set(counts) == set(PROGRAM_BUDGETS)
    over = {
        name: f"{count['programs']} > {PROGRAM_BUDGETS[name]}: {count['names']}"
        for name, count in counts.items()
        if count["programs"] > PROGRAM_BUDGETS[name]
    }
    assert not over, over
    # the count sees the programs: every entry point trains, through the one driver
    assert all(count["names"].get("jit(run)", 0) >= 1 for count in counts.values())
