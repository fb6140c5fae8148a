import numpy as np
import pytest

from lstmlab.experiments import moving_average as ma
from lstmlab.experiments.convergence import (
    CellSummary,
    ConvergenceConfig,
    claim,
    run,
)


def test_claim_is_the_scripts():
    assert claim("stateless", tsteps=3, lahead=3) and claim("stateless", tsteps=2, lahead=5)
    assert not claim("stateless", tsteps=3, lahead=2)
    assert all(claim("stateful", t, la) for t in range(1, 5) for la in range(1, 5))


@pytest.mark.parametrize(
    ("fraction", "claimed", "verdict", "agrees"),
    [(1.0, True, "converges", True), (0.0, True, "does not converge", False),
     (0.5, True, "mixed", False), (0.0, False, "does not converge", True),
     (1 / 3, False, "mixed", False)],
)
def test_cell_verdicts(fraction, claimed, verdict, agrees):
    cell = CellSummary(tsteps=2, lahead=1, mode="stateless", fraction=fraction,
                       median_ratio=0.5, claimed=claimed)
    assert cell.verdict == verdict and cell.agrees is agrees


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"tsteps": ()}, "tsteps must be a non-empty sequence of positive integers, got ()"),
     ({"lahead": (1, 1)}, "lahead must not repeat values, got (1, 1)"),
     ({"seeds": 0}, "seeds must be a positive integer, got 0"),
     ({"batch_size": 0}, "batch_size must be a positive integer, got 0")],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ConvergenceConfig(**changes)


@pytest.mark.slow
def test_vmapped_grid_matches_single_trainings():
    config = ConvergenceConfig(tsteps=(1, 3), lahead=(2,), seeds=2, input_len=120, epochs=2)
    result = run(config, quiet=True)
    assert len(result.rows) == 2 * 1 * 2 * 2
    keys = {(r.tsteps, r.lahead, r.mode, r.seed) for r in result.rows}
    assert len(keys) == len(result.rows)
    checked = 0
    for row in result.rows:
        if (row.tsteps, row.seed) != (3, 1987):
            continue
        cell = config.cell(row.tsteps, row.lahead, row.seed)
        data = ma.make_data(cell)
        train = ma.make_batches(data.x_train, data.y_train, batch_size=1, layout="official")
        score = ma.scoring_batches(data, cell)
        stateful = row.mode == "stateful"
        params, _, _, updates = ma.train_model(cell, train, score, stateful=stateful)
        predicted = ma.predict_samples(ma.model_config(cell, stateful=stateful), params, score)
        single = float(np.mean(np.square(data.y_test.astype(np.float64) - predicted)))
        assert updates == row.updates == 96 * 2
        np.testing.assert_allclose(row.test_mse, single, rtol=1e-4)
        # The definition, computed here: the MSE of predicting the training mean.
        mean_mse = float(np.mean(np.square(
            data.y_test.astype(np.float64) - data.y_train.astype(np.float64).mean())))
        np.testing.assert_allclose(row.mean_mse, mean_mse, rtol=1e-12)
        np.testing.assert_allclose(row.ratio, single / mean_mse, rtol=1e-4)
        assert row.converged == (row.test_mse <= config.threshold * mean_mse)
        checked += 1
    assert checked == 2
    fraction = result.matrix("stateless", "fraction")
    assert fraction.shape == (2, 1)
    assert set(np.unique(fraction)) <= {0.0, 0.5, 1.0}
