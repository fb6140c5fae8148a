import jax
import numpy as np
import pytest

from lstmlab.layers.initializers import glorot_uniform, orthogonal


def test_glorot_uniform_stays_within_keras_limit_and_fills_it():
    weights = np.asarray(glorot_uniform(jax.random.key(0), (30, 80)))
    limit = np.sqrt(6.0 / (30 + 80))
    assert np.abs(weights).max() <= limit
    # A uniform on [-limit, limit] has variance limit^2 / 3.
    assert weights.var() == pytest.approx(limit**2 / 3, rel=0.1)


@pytest.mark.parametrize("shape", [(20, 80), (80, 20), (7, 7)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    q = np.asarray(orthogonal(jax.random.key(1), shape), dtype=np.float64)
    rows, cols = shape
    gram = q @ q.T if rows <= cols else q.T @ q
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_orthogonal_depends_on_the_key():
    a = orthogonal(jax.random.key(1), (4, 16))
    b = orthogonal(jax.random.key(2), (4, 16))
    assert not np.allclose(a, b)
