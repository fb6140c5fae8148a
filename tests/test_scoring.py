"""Scores and verdicts, each against an independent reference (loops, scipy, known noise)."""

import math

import numpy as np
import pytest
from scipy import stats

from lstmlab.scoring import (
    ScoreSummary,
    compare_seeds,
    conformal_halfwidths,
    conformal_intervals,
    diebold_mariano,
    flag_forecasts,
    interval_coverage,
    interval_coverage_per_step,
    mase_scale,
    mean_interval_width,
    plausible_range,
    point_metrics,
    seed_ensemble,
    summary,
    verdict,
)

# --------------------------------------------------------------------------- references


def loop_mase_scale(train, lag):
    scales = []
    for s in range(train.shape[1]):
        diffs = [
            abs(train[t, s] - train[t - lag, s])
            for t in range(lag, train.shape[0])
            if not (math.isnan(train[t, s]) or math.isnan(train[t - lag, s]))
        ]
        scales.append(sum(diffs) / len(diffs) if diffs else math.nan)
    return np.array(scales)


def loop_metrics(forecasts, actual, scale, step=None):
    """Per seed: (rmse, mae, mase, mape) over the observed points (of one step, if given)."""
    seeds, origins, horizon, series = forecasts.shape
    rows = []
    for k in range(seeds):
        sq, ab, sc, pc = [], [], [], []
        for o in range(origins):
            for h in range(horizon) if step is None else [step]:
                for s in range(series):
                    y = actual[o, h, s]
                    if math.isnan(y):
                        continue
                    e = forecasts[k, o, h, s] - y
                    sq.append(e * e)
                    ab.append(abs(e))
                    sc.append(abs(e) / scale[s])
                    if y != 0:
                        pc.append(100 * abs(e) / abs(y))
        rows.append(
            (
                math.sqrt(sum(sq) / len(sq)),
                sum(ab) / len(ab),
                sum(sc) / len(sc),
                sum(pc) / len(pc) if pc else math.nan,
            )
        )
    return np.array(rows)  # (seeds, 4)


# --------------------------------------------------------------------------- MASE scale


@pytest.mark.parametrize("season", [None, 1, 4, 7])
def test_mase_scale_matches_a_loop_with_missing_values(season):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
    train[[3, 17, 30], 0] = np.nan
    train[5, 2] = np.nan
    lag = 1 if season is None else season
    np.testing.assert_allclose(mase_scale(train, season), loop_mase_scale(train, lag), rtol=1e-12)


def test_mase_scale_seasonal_differs_from_naive():
    t = np.arange(48.0)
    train = np.sin(2 * np.pi * t / 12)[:, None] + 0.01 * t[:, None]
    # The seasonal naive forecast is nearly exact here; the naive one is not.
    assert mase_scale(train, 12)[0] == pytest.approx(0.12)
    assert mase_scale(train)[0] > 0.3


def test_mase_scale_undefined_series_give_nan_mase_not_inf():
    train = np.array([[2.0, 1.0], [2.0, 3.0], [2.0, 2.0]])  # series 0 is constant
    scale = mase_scale(train)
    assert scale.tolist() == [0.0, 1.5]
    assert np.isnan(mase_scale(train[:1])).all()  # one value: no difference at all
    metrics = point_metrics(np.ones((2, 3, 1, 2)), np.zeros((3, 1, 2)), scale)
    assert np.isnan(metrics["mase"]).all() and np.isnan(metrics["mase_per_step"]).all()
    assert metrics["rmse"].tolist() == [1.0, 1.0]  # the other metrics are unaffected


# --------------------------------------------------------------------------- point metrics


def test_point_metrics_hand_computed():
    # One seed, 2 origins, 2 steps, 1 series; actual [[4, 0], [2, NaN]].
    forecasts = np.array([[[[5.0], [1.0]], [[0.0], [7.0]]]])
    actual = np.array([[[4.0], [0.0]], [[2.0], [np.nan]]])
    m = point_metrics(forecasts, actual, np.array([2.0]))
    # errors over observed points: 1, 1, -2 -> squared 1, 1, 4; |e| 1, 1, 2
    assert m["rmse"][0] == pytest.approx(math.sqrt(6 / 3))
    assert m["mae"][0] == pytest.approx(4 / 3)
    assert m["mase"][0] == pytest.approx(4 / 3 / 2)
    assert m["mape"][0] == pytest.approx((25.0 + 100.0) / 2)  # actual 0 left out of MAPE
    # step 0: errors 1, -2; step 1: error 1 only (the NaN is left out)
    np.testing.assert_allclose(m["rmse_per_step"][0], [math.sqrt(5 / 2), 1.0])
    np.testing.assert_allclose(m["mae_per_step"][0], [1.5, 1.0])
    np.testing.assert_allclose(m["mase_per_step"][0], [0.75, 0.5])
    assert m["mape_per_step"][0, 0] == pytest.approx(62.5)
    assert np.isnan(m["mape_per_step"][0, 1])  # the only observed actual there is 0
    assert int(m["n_missing"]) == 1


def test_point_metrics_match_a_loop_reference():
    rng = np.random.default_rng(1)
    seeds, origins, horizon, series = 3, 7, 4, 2
    actual = rng.normal(size=(origins, horizon, series)) * [1.0, 50.0]
    actual[rng.random(actual.shape) < 0.2] = np.nan
    actual[0, 1, 0] = 0.0  # a zero actual: in RMSE, MAE, MASE, not in MAPE
    forecasts = actual[None] + rng.normal(size=(seeds, origins, horizon, series))
    forecasts = np.where(np.isnan(forecasts), 3.0, forecasts)  # forecasts are finite
    scale = np.array([0.7, 30.0])
    m = point_metrics(forecasts, actual, scale)
    expected = loop_metrics(forecasts, actual, scale)
    for column, name in enumerate(["rmse", "mae", "mase", "mape"]):
        np.testing.assert_allclose(m[name], expected[:, column], rtol=1e-12)
        per_step = np.stack(
            [loop_metrics(forecasts, actual, scale, step)[:, column] for step in range(horizon)],
            axis=1,
        )
        np.testing.assert_allclose(m[f"{name}_per_step"], per_step, rtol=1e-12)
    assert int(m["n_missing"]) == int(np.isnan(actual).sum()) > 0


def test_point_metrics_show_a_diverged_seed_instead_of_hiding_it():
    actual = np.ones((2, 1, 1))
    forecasts = np.ones((3, 2, 1, 1))
    forecasts[1, 0, 0, 0] = np.nan
    forecasts[2, 0, 0, 0] = 1e21
    m = point_metrics(forecasts, actual, np.ones(1))
    assert m["rmse"][0] == 0.0 and np.isnan(m["rmse"][1]) and np.isnan(m["mape"][1])
    assert m["rmse"][2] == pytest.approx(1e21 / math.sqrt(2))  # no overflow in float64
    assert np.isnan(m["rmse_per_step"][1, 0])


def test_point_metrics_refuse_mismatched_shapes_and_infinite_actual():
    with pytest.raises(ValueError, match=r"actual must have shape \(origins, horizon, series\)"):
        point_metrics(np.zeros((2, 3, 4, 1)), np.zeros((3, 5, 1)), np.ones(1))
    with pytest.raises(ValueError, match=r"scale must have shape \(series,\) = \(1,\)"):
        point_metrics(np.zeros((2, 3, 4, 1)), np.zeros((3, 4, 1)), np.ones(2))
    actual = np.zeros((3, 4, 1))
    actual[1, 1, 0] = np.inf
    with pytest.raises(ValueError, match="actual holds 1 infinite value"):
        point_metrics(np.zeros((2, 3, 4, 1)), actual, np.ones(1))


# --------------------------------------------------------------------------- flags and ensemble


def test_plausible_range_by_hand():
    train = np.array([[0.0, 5.0], [0.56, np.nan], [0.2, 5.0]])
    low, high = plausible_range(train)
    np.testing.assert_allclose(low, [0.0 - 3 * 0.56, 5.0 - 3 * 5.0])  # constant: width |5|
    np.testing.assert_allclose(high, [0.56 + 3 * 0.56, 5.0 + 3 * 5.0])
    with pytest.raises(ValueError, match=r"no observed value in series \[1\]"):
        plausible_range(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="factor must be > 0, got 0"):
        plausible_range(train, factor=0)


def test_an_exploding_forecast_is_flagged_and_left_out_of_the_ensemble():
    rng = np.random.default_rng(2)
    train = rng.uniform(0.0, 0.56, size=(60, 1))  # the issue's data in [0, 0.56]
    low, high = plausible_range(train)
    forecasts = rng.uniform(0.0, 0.56, size=(5, 8, 3, 1))
    forecasts[1, 4:, :, 0] = 1e21  # 4 origins * 3 steps = 12 values beyond the range
    forecasts[3, 2, 1, 0] = np.nan
    forecasts[3, 5, 2, 0] = -np.inf
    flags = flag_forecasts(forecasts, low, high)
    assert flags.flagged.tolist() == [False, True, False, True, False]
    assert flags.non_finite.tolist() == [0, 0, 0, 2, 0]
    assert flags.out_of_range.tolist() == [0, 12, 0, 0, 0]
    range_text = f"[{low[0]:.4g}, {high[0]:.4g}]"
    assert flags.reasons == (
        f"seed 1: 12 beyond the plausible range {range_text}",
        "seed 3: 2 non-finite values",
    )
    assert flags.note.startswith("2 of 5 seeds flagged and left out of the seed ensemble: seed 1")
    ensemble = seed_ensemble(forecasts, flags.flagged)
    assert ensemble.shape == (1, 8, 3, 1)
    np.testing.assert_array_equal(ensemble[0], np.median(forecasts[[0, 2, 4]], axis=0))
    # The check is not vacuous: the ensemble of all seeds is not finite.
    assert not np.isfinite(seed_ensemble(forecasts, np.zeros(5, dtype=bool))).all()


def test_flags_count_both_reasons_and_several_series():
    forecasts = np.zeros((2, 2, 1, 2))
    forecasts[0, 0, 0, 0] = np.nan
    forecasts[0, 1, 0, 1] = 100.0  # outside series 1's range, inside series 0's
    forecasts[1, 0, 0, 0] = -2.0  # below series 0's range
    flags = flag_forecasts(forecasts, np.array([-1.0, -1.0]), np.array([1000.0, 1.0]))
    assert flags.reasons == (
        "seed 0: 1 non-finite value, 1 beyond the plausible range of their series",
        "seed 1: 1 beyond the plausible range of their series",
    )
    assert flags.flagged.tolist() == [True, True]


def test_all_seeds_flagged_give_an_all_nan_ensemble_and_say_so():
    forecasts = np.full((3, 2, 1, 1), np.nan)
    flags = flag_forecasts(forecasts, np.zeros(1), np.ones(1))
    assert flags.flagged.all()
    assert np.isnan(seed_ensemble(forecasts, flags.flagged)).all()
    assert flags.note.startswith("all 3 seed(s) flagged, so the seed ensemble is empty (NaN)")
    assert flag_forecasts(np.zeros((3, 2, 1, 1)), np.zeros(1), np.ones(1)).note == ""
    with pytest.raises(ValueError, match=r"flagged must be a bool array of shape \(seeds,\)"):
        seed_ensemble(forecasts, np.array([0, 1, 0]))


# --------------------------------------------------------------------------- intervals


def loop_halfwidth(values, level):
    values = sorted(abs(v) for v in values if not math.isnan(v))
    k = math.ceil(round((len(values) + 1) * level, 9))
    return values[k - 1] if k <= len(values) else math.inf


def test_conformal_halfwidths_match_the_order_statistic():
    rng = np.random.default_rng(3)
    residuals = rng.normal(size=(30, 4, 2)) * [1.0, 10.0]
    residuals[rng.random(residuals.shape) < 0.3] = np.nan  # cells keep different n
    residuals[:, 3, 1] = np.nan
    residuals[:5, 3, 1] = [0.1, -0.2, 0.3, -0.4, 0.5]  # n = 5: finite at 0.8, inf at 0.95
    for level in (0.7, 0.8, 0.9, 0.95):
        expected = np.array(
            [[loop_halfwidth(residuals[:, h, s], level) for s in range(2)] for h in range(4)]
        )
        np.testing.assert_array_equal(conformal_halfwidths(residuals, level), expected)
    assert conformal_halfwidths(residuals, 0.8)[3, 1] == 0.5  # k = ceil(6 * 0.8) = 5
    assert conformal_halfwidths(residuals, 0.95)[3, 1] == math.inf
    # 10 * 0.7 is 7.000000000000001 in floating point: k must be 7, not 8.
    assert conformal_halfwidths(np.arange(1.0, 10.0).reshape(9, 1, 1), 0.7)[0, 0] == 7.0
    with pytest.raises(ValueError, match="level must be a fraction strictly between 0 and 1"):
        conformal_halfwidths(residuals, 1.0)


def coverage_is_nominal(halfwidths, level, rng, mean, sigma):
    """Test coverage over 20,000 draws of each cell, within 0.02 of ``level``."""
    actual = mean[None] + sigma * rng.normal(size=(20_000, *mean.shape))
    lower, upper = conformal_intervals(np.broadcast_to(mean, actual.shape), halfwidths)
    return abs(interval_coverage(lower, upper, actual) - level) <= 0.02


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_conformal_coverage_on_known_gaussian_noise(level):
    rng = np.random.default_rng(4)
    horizon, series = 6, 3
    # The predictor is the true mean; the noise grows with the step and differs per series, so
    # a transposed or shared half-width would miss.
    mean = np.linspace(-5.0, 5.0, horizon * series).reshape(horizon, series)
    sigma = np.outer(np.arange(1.0, horizon + 1), [0.5, 1.0, 4.0])  # (horizon, series)
    calibration = mean[None] + sigma * rng.normal(size=(200, horizon, series))
    halfwidths = conformal_halfwidths(calibration - mean[None], level)
    # Near the Gaussian quantile of each cell's noise.
    z = stats.norm.ppf((1 + level) / 2)
    np.testing.assert_allclose(halfwidths / (z * sigma), 1.0, atol=0.25)
    assert coverage_is_nominal(halfwidths, level, rng, mean, sigma)
    # The same check fails with too narrow, too wide or misplaced (series swapped) widths.
    assert not coverage_is_nominal(0.8 * halfwidths, level, rng, mean, sigma)
    assert not coverage_is_nominal(1.3 * halfwidths, level, rng, mean, sigma)
    assert not coverage_is_nominal(halfwidths[:, ::-1], level, rng, mean, sigma)


def test_interval_coverage_width_and_per_step_match_a_loop():
    rng = np.random.default_rng(5)
    actual = rng.normal(size=(9, 3, 2))
    actual[rng.random(actual.shape) < 0.25] = np.nan
    lower = rng.normal(size=actual.shape) - 0.5
    upper = lower + rng.uniform(0.0, 2.0, size=actual.shape)
    inside, widths, per_step = [], [], [[] for _ in range(3)]
    for o, h, s in np.ndindex(actual.shape):
        if math.isnan(actual[o, h, s]):
            continue
        hit = lower[o, h, s] <= actual[o, h, s] <= upper[o, h, s]
        inside.append(hit)
        per_step[h].append(hit)
        widths.append(upper[o, h, s] - lower[o, h, s])
    assert interval_coverage(lower, upper, actual) == pytest.approx(np.mean(inside))
    np.testing.assert_allclose(
        interval_coverage_per_step(lower, upper, actual), [np.mean(p) for p in per_step]
    )
    assert mean_interval_width(lower, upper, actual) == pytest.approx(np.mean(widths))
    assert math.isnan(interval_coverage(lower, upper, np.full(actual.shape, np.nan)))
    with pytest.raises(ValueError, match="upper must have lower's shape"):
        interval_coverage(lower, upper[:, :2], actual)


# --------------------------------------------------------------------------- Mann-Whitney


def test_compare_seeds_matches_scipy():
    rng = np.random.default_rng(6)
    a, b = rng.normal(18.0, 1.0, size=7), rng.normal(18.5, 1.0, size=5)
    test = compare_seeds(a, b)
    reference = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert test.statistic == reference.statistic
    assert test.p_value == reference.pvalue
    assert (test.median_a, test.median_b) == (np.median(a), np.median(b))
    assert (test.n_a, test.n_b) == (7, 5)


def test_compare_seeds_separated_case_is_significant_in_the_right_direction():
    stateful = np.array([3.1, 3.4, 3.2, 3.6, 3.3])
    stateless = np.array([0.50, 0.52, 0.55, 0.51, 0.53])
    test = compare_seeds(stateful, stateless)
    assert test.p_value < 0.05
    assert test.sentence("stateful", "stateless").startswith(
        "stateless beat stateful significantly on RMSE over 5 seeds (Mann-Whitney p = 0.0079"
    )
    # Higher is better (a coverage, an accuracy): the winner flips.
    assert (
        compare_seeds(stateless, stateful)
        .sentence("stateless", "stateful", "coverage", lower_is_better=False)
        .startswith("stateful beat stateless significantly on coverage")
    )


def test_compare_seeds_says_when_there_is_no_difference_or_too_few_seeds():
    a = np.array([17.0, 18.5, 17.9, 16.8, 18.1])
    b = np.array([17.5, 17.2, 18.8, 18.0, 17.4])
    test = compare_seeds(a, b)
    assert test.p_value > 0.05
    assert test.sentence("stateful", "stateless") == (
        "no significant difference in RMSE between stateful and stateless over 5 seeds "
        f"(p = {test.p_value:.2g}; median RMSE 17.9 against 17.5)"
    )
    few = compare_seeds([1.0, 2.0], [5.0, 6.0, 7.0])
    assert few.sentence("a", "b").startswith(
        "the test over seeds cannot decide between a and b with 2 and 3 seeds"
    )
    # NaN scores are left out and counted.
    assert compare_seeds([1.0, np.nan, 2.0, 3.0], [4.0, 5.0, 6.0]).n_a == 3


# --------------------------------------------------------------------------- verdicts


def drawn(mean, std, size, seed):
    """``size`` samples whose sample mean and standard deviation are exactly ``mean``, ``std``."""
    z = np.random.default_rng(seed).normal(size=size)
    return mean + std * (z - z.mean()) / z.std(ddof=1)


def test_verdict_ties_the_issues_example():
    scores = {"stateful": drawn(18.0, 0.8, 5, 7), "stacked": drawn(17.4, 0.9, 5, 8)}
    result = verdict(scores)
    assert (result.best, result.ties) == ("stacked", ("stateful",))
    assert result.sentence == (
        "By RMSE, stacked is best (17.4 ± 0.9); stateful (18.0 ± 0.8) is within the seed "
        "noise, so they tie."
    )
    assert result.summaries["stacked"].mean == pytest.approx(17.4)
    assert result.summaries["stacked"].median == pytest.approx(np.median(scores["stacked"]))
    assert result.summaries["stacked"].worst == np.max(scores["stacked"])


def test_verdict_separates_a_clear_case_and_the_rule_has_an_edge():
    scores = {
        "persistence": np.array([30.0]),
        "mlp": drawn(20.0, 0.5, 5, 9),
        "stacked": drawn(10.0, 0.5, 5, 10),
    }
    result = verdict(scores)
    assert (result.best, result.ties, result.ranking) == (
        "stacked",
        (),
        ("stacked", "mlp", "persistence"),
    )
    assert result.sentence == (
        "By RMSE, stacked is best (10.0 ± 0.5): next is mlp (20.0 ± 0.5), a gap beyond the seed "
        "noise (no test across origins was run)."
    )
    # across origins: a consistent gap is a clear margin, a gap of noise is not
    rng = np.random.default_rng(3)
    errors = rng.normal(0.0, 1.0, 40) ** 2
    clear = verdict(scores, origin_losses={"stacked": errors, "mlp": errors + 1.0})
    assert clear.sentence.startswith("By RMSE, stacked is best by a clear margin (10.0 ± 0.5)")
    assert "significantly worse across the 40 test origins (Diebold-Mariano p = < 0.001)" in (
        clear.sentence
    )
    noisy = rng.normal(0.0, 1.0, 40) ** 2
    unclear = verdict(scores, origin_losses={"stacked": errors, "mlp": noisy})
    test = diebold_mariano(errors, noisy)
    assert test.p_value >= 0.05
    assert unclear.sentence.endswith(
        "a gap beyond the seed noise but not significant across the 40 test origins "
        f"(Diebold-Mariano p = {test.p_value:.2g})."
    )
    # The rule's edge: a gap of 0.99 std ties, 1.01 std does not.
    near = verdict({"a": drawn(10.0, 1.0, 5, 11), "b": drawn(10.99, 0.5, 5, 12)})
    far = verdict({"a": drawn(10.0, 1.0, 5, 11), "b": drawn(11.01, 0.5, 5, 12)})
    assert near.ties == ("b",) and far.ties == ()
    # A baseline (one sample) ties within the neural model's spread.
    baseline = verdict({"stacked": drawn(17.4, 0.9, 5, 8), "persistence": [18.0]}, noise="x")
    assert baseline.ties == ("persistence",)
    assert "persistence (18) is within x" in baseline.sentence


def test_a_tie_within_the_seed_noise_is_broken_by_the_forecasts_across_origins():
    # One wild seed spreads a model's scores so widely that the best one sits "within its
    # noise"; its seed median's forecast is still far worse at every origin: no tie.
    scores = {"auto_arima": [15.1], "stacked": [52.0, 55.0, 60.0, 62.0, 307.5]}
    rng = np.random.default_rng(4)
    good = rng.normal(0.0, 1.0, 44) ** 2
    wild = verdict(scores, origin_losses={"auto_arima": good, "stacked": good + 9.0})
    test = diebold_mariano(good, good + 9.0)
    assert test.p_value < 0.05 and test.statistic < 0
    assert (wild.best, wild.ties) == ("auto_arima", ())
    assert wild.sentence == (
        "By RMSE, auto_arima is best by a clear margin (15.1): next is stacked (107 ± 112), "
        "within the seed noise but significantly worse across the 44 test origins "
        "(Diebold-Mariano p = < 0.001)."
    )
    # the same spread with forecasts no worse across the origins: a tie, as before
    level = verdict(scores, origin_losses={"auto_arima": good, "stacked": good[::-1]})
    assert diebold_mariano(good, good[::-1]).p_value >= 0.05
    assert level.ties == ("stacked",)
    # a runner-up whose forecasts are significantly *better* across the origins is no
    # clear margin for the best mean score
    close = {"a": drawn(10.0, 0.1, 5, 1), "b": drawn(11.0, 0.1, 5, 2)}
    reverse = verdict(close, origin_losses={"a": good + 9.0, "b": good})
    assert "clear margin" not in reverse.sentence
    assert reverse.sentence.endswith(
        "a gap beyond the seed noise but its forecast is significantly better across the 44 "
        "test origins (Diebold-Mariano p = < 0.001)."
    )


def test_verdict_higher_is_better_and_non_finite_models():
    scores = {"a": [0.70, 0.72, 0.71], "b": [0.90, 0.91, 0.89], "broken": [np.nan, np.inf]}
    result = verdict(scores, lower_is_better=False, metric="coverage")
    assert result.best == "b" and result.ranking == ("b", "a")
    assert result.sentence.endswith("No finite coverage for broken.")
    assert result.summaries["broken"].worst == -math.inf
    with pytest.raises(ValueError, match="no model has a finite RMSE score"):
        verdict({"broken": [np.nan]})
    with pytest.raises(ValueError, match="scores is empty"):
        verdict({})


def test_summary_counts_a_diverged_seed_as_the_worst():
    result = summary({"mlp": [2.0, 4.0, np.inf], "persistence": [3.0]})
    assert result["mlp"] == ScoreSummary(mean=3.0, std=math.sqrt(2.0), median=3.0, worst=math.inf)
    assert result["persistence"] == ScoreSummary(mean=3.0, std=0.0, median=3.0, worst=3.0)


def test_importing_scoring_leaves_scipy_unloaded():
    # scipy.stats costs ~58 MB and ~0.5 s: the service imports scoring and never tests seeds
    import subprocess
    import sys

    code = "import sys, lstmlab.scoring; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diebold_mariano_one_step_is_the_t_test_and_longer_steps_widen_the_variance(seed):
    from scipy import stats

    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 50) ** 2, rng.normal(0.3, 1, 50) ** 2
    one = diebold_mariano(a, b)
    reference = stats.ttest_1samp(a - b, 0.0)
    assert one.origins == 50
    assert one.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert one.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    # three steps ahead: the autocovariances at lags 1 and 2, the HLN factor, by hand
    d = a - b
    n, c = len(d), d - d.mean()
    gamma = [c[k:] @ c[: n - k] / n for k in range(3)]
    statistic = d.mean() / np.sqrt((gamma[0] + 2 * (gamma[1] + gamma[2])) / n)
    statistic *= np.sqrt((n + 1 - 6 + 3 * 2 / n) / n)
    three = diebold_mariano(a, b, horizon=3)
    assert three.statistic == pytest.approx(statistic, rel=1e-12)
    assert three.p_value == pytest.approx(2 * stats.t.sf(abs(statistic), n - 1), rel=1e-12)
    # a NaN loss drops its origin; too few origins give no p-value
    a[4] = np.nan
    assert diebold_mariano(a, b).origins == 49
    assert np.isnan(diebold_mariano(a[:2], b[:2]).p_value)
    with pytest.raises(ValueError, match="one loss per origin"):
        diebold_mariano(a, b[:-1])


def test_lowest_picks_the_first_of_tied_scores_and_skips_nothing_finite():
    from lstmlab.scoring import lowest

    scores = [0.5, 0.25, np.inf, 0.25]
    assert lowest(scores) == int(np.argmin(scores)) == 1  # numpy's argmin: the first minimum
    assert lowest([np.inf, np.inf]) == 0
    assert lowest([3.0, 2.0, 1.0]) == 2
