"""The README's Python examples run as written (a README claim is backed by a test)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)
    printed = capsys.readouterr().out.split()
    assert printed, "every example prints what it computed"
    if "history" in namespace:
        history = namespace["history"]
        assert history.loss[-1] < history.loss[0], "the example's training lowers the loss"
