"""How ``Forecaster.fit`` chooses and trains its model: ``fit_model``, a function of the data.

The stages, each a function here or in ``lstmlab.pipeline``: every series scaled on its own
values; the seasons and the window; every candidate (a kind and a norm, ``candidate_plans``)
trained and scored on the validation tail (``_train_candidates``), a recursive one by its
rollouts from origins across the tail (``_recursive_residuals``); the lowest score kept and
trained again on every reading (``refit``); what the intervals and the sanity check keep
(``Calibration``) and the metrics. The ``Forecaster`` takes the result (``FittedModel``) and
reads every series into its state.
"""

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from lstmlab.core.model import ModelConfig, Params
from lstmlab.core.train import fit
from lstmlab.data.frames import TrainingData
from lstmlab.data.scaling import Scaler, fit_scaler
from lstmlab.data.seasons import Seasons, choose_seasons, choose_window
from lstmlab.defaults import MIN_WINDOW, ForecasterSettings
from lstmlab.pipeline import (
    FORECAST_PLAUSIBLE_FACTOR,
    Calibration,
    Candidate,
    ForecasterConfig,
    Plan,
    Recipe,
    calibration_origins,
    calibration_steps,
    candidate_plans,
    finite_or_none,
    fit_metrics,
    initial_states,
    interval_reach,
    refit,
    score_candidate,
    training_config,
    training_layout,
)
from lstmlab.scoring import lowest, plausible_range, seed_ensemble
from lstmlab.states import SeriesState, fresh_series_state
from lstmlab.stepping import read_states, rollout_states

__all__ = [
    "RESIDUAL_ROWS",
    "FittedModel",
    "fit_model",
]

# The calibration's rollouts run in groups of series of at most this many origins (a power of
# two: the rows of one rollout are padded to one), so that fit's memory stays bounded.
RESIDUAL_ROWS = 8192


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class FittedModel:
    """What ``fit_model`` chose and trained.

    Attributes:
        model: the chosen candidate's network.
        params: its parameters, leaves with a leading seeds axis (refitted when ``refit``).
        recipe: how readings become its inputs.
        scaler: the scaler a series first seen after fitting starts with (fitted on all).
        scalers: each series' own scaler.
        metrics: the training metrics.
        calibration: what the intervals and the sanity check keep.
        horizon_capacity: the forecast steps one compiled rollout holds after the
            validation rollouts (the capacity passed in, doubled while too short).
    """

    model: ModelConfig
    params: Params
    recipe: Recipe
    scaler: Scaler
    scalers: dict[str, Scaler]
    metrics: dict[str, Any]
    calibration: Calibration
    horizon_capacity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class _Network:
    """A candidate's network as the rollouts read it."""

    model: ModelConfig
    params: Params
    recipe: Recipe
    seeds: int


def fit_model(
    settings: ForecasterConfig,
    parsed: TrainingData,
    *,
    quiet: bool,
    read_capacity: int,
    horizon_capacity: int,
) -> FittedModel:
    """Choose and train the model of ``settings`` on data parsed and checked (``fit``).

    The data given is the training data. Each series gets its own scaler, fitted on its
    own values. The window is ``window``, or one that covers the shortest season (given,
    from the frequency, or detected on the shortest series; ``choose_window`` with
    ``MIN_WINDOW`` and at most a third of the shortest series). The last ``validation``
    of each series (at least ``horizon`` steps) is held out of the training batches: the
    driver stops each seed when its validation loss has not improved for ``patience``
    epochs, restores its best weights and halves its learning rate on a plateau.
    Every kind trains on the sliding windows of every series (targets: the next step,
    or the next ``horizon`` steps): window models on all of them shuffled, stateful
    models in Keras' stateful layout (``make_stream_batches``: each series
    ``batch_size`` contiguous streams of windows, the state carried from a window to the
    next, reset every epoch), as ``compare`` trains them. The ``seeds`` trainings run
    side by side in the one training driver.

    With ``norm="auto"`` every candidate of ``AUTO_NORMS`` is trained with the same
    seeds, and the one whose median over the unflagged seeds has the lowest RMSE on
    the validation tail (scaled units, every series and step ahead pooled) is kept; a
    tie keeps the earlier candidate. The validation forecasts of every seed are checked
    (``flag_forecasts`` against each series' ``plausible_range``), and the residuals of
    the kept candidate's median calibrate the prediction intervals (``forecast(level=)``).

    Args:
        settings: the forecaster's settings.
        parsed: the training data (``parse_training_data``, ``check_outliers``).
        quiet: no progress bar.
        read_capacity: the readings one compiled read holds (the rollouts' reads).
        horizon_capacity: the forecast steps one compiled rollout holds.

    Returns:
        The ``FittedModel``.

    Raises:
        ValueError: a series its scaler cannot fit, series too short, or training that
            diverged in every seed.
    """
    scalers = {}
    for series_id, values in parsed.values.items():
        try:
            scalers[series_id] = fit_scaler(values, settings.scaler, parsed.columns)
        except ValueError as error:
            raise ValueError(f"series {series_id!r}: {error}") from None
    pooled = np.concatenate(list(parsed.values.values()))
    default_scaler = fit_scaler(pooled, settings.scaler, parsed.columns)
    ids = list(parsed.values)
    scaled = [scalers[i].transform(parsed.values[i]).astype(np.float32) for i in ids]
    horizon = settings.horizon
    seasons, window, window_note = _seasons_and_window(settings, parsed)
    n_val = [
        max(horizon, int(round(settings.validation * len(s)))) if settings.validation else 0
        for s in scaled
    ]
    ranges = {i: plausible_range(parsed.values[i], FORECAST_PLAUSIBLE_FACTOR) for i in ids}
    plans = candidate_plans(settings, ids, scaled, window, n_val)
    early = any(n_val)  # the candidates' trainings watch a validation tail
    started = time.perf_counter()
    trained = _train_candidates(settings, plans, ids, scaled, scalers, n_val, ranges, quiet)
    seconds = time.perf_counter() - started
    kinds = [kind for kind, _ in trained]
    candidates = [candidate for _, candidate in trained]
    recipes = [
        Recipe(
            kind=kind,
            window=window,
            columns=parsed.columns,
            time_col=parsed.time_col,
            freq=parsed.freq,
            horizon=horizon,
            norm=candidate.norm,
            seasons=seasons.lengths,
            step=parsed.step,
        )
        for kind, candidate in trained
    ]
    rolled: list[dict[str, np.ndarray]] = [{} for _ in candidates]
    scores = [c.score for c in candidates]
    if horizon == 1 and early:
        rolled, scores, horizon_capacity = _rollout_scores(
            candidates,
            recipes,
            settings.seeds,
            dict(zip(ids, scaled, strict=True)),
            dict(zip(ids, n_val, strict=True)),
            scalers,
            ranges,
            (read_capacity, horizon_capacity),
        )
    chosen = lowest(scores)  # a tie keeps the earlier: AUTO_KINDS, then AUTO_NORMS order
    kept = candidates[chosen]
    names = [f"{kind} ({c.norm})" for kind, c in zip(kinds, candidates, strict=True)]
    metrics = fit_metrics(kept, settings, parsed.values, seconds)
    params, refit_epochs = _refitted(
        settings, kept, kinds[chosen], names[chosen], ids, scaled, window, early
    )
    calibration = _calibration(kept, rolled[chosen], ranges, parsed.values, pooled)
    one_kind = len(plans) == 1
    metrics.update(
        window=window,
        window_note=window_note,
        seasons=list(seasons.lengths),
        seasons_note=seasons.line(),
        model=kinds[chosen],
        norm=kept.norm,
        norm_scores={c.norm: finite_or_none(scores[k]) for k, c in enumerate(candidates)}
        if len(candidates) > 1 and one_kind
        else {},
        model_scores={n: finite_or_none(v) for n, v in zip(names, scores, strict=True)}
        if len(candidates) > 1
        else {},
        validation_rmse=finite_or_none(scores[chosen]) if early else None,
        validation_one_step_rmse=finite_or_none(kept.score) if early else None,
        refit_epochs=refit_epochs,
        validation_steps={i: n for i, n in zip(ids, n_val, strict=True)},
        warnings={"validation": kept.flags.note} if kept.flags.note else {},
    )
    if calibration.residuals:
        _note_intervals(metrics, calibration, recipes[chosen])
    return FittedModel(
        model=kept.model,
        params=params,
        recipe=recipes[chosen],
        scaler=default_scaler,
        scalers=scalers,
        metrics=metrics,
        calibration=calibration,
        horizon_capacity=horizon_capacity,
    )


def _train_candidates(
    settings: ForecasterConfig,
    plans: Sequence[Plan],
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    scalers: Mapping[str, Scaler],
    n_val: Sequence[int],
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    quiet: bool,
) -> list[tuple[str, Candidate]]:
    """Train every seed of every candidate (a kind and a norm) and score it on the tail.

    Early stopping and the learning-rate plateau watch the validation tail when there is
    one. Seed ``s`` of every candidate starts from ``jax.random.key(s)``.

    Args:
        settings: the forecaster's settings (epochs, learning rate, seeds, patience).
        plans: ``candidate_plans``.
        ids: the series, in order.
        scaled: each series' scaled ``(time, columns)`` readings.
        scalers: each series' scaler.
        n_val: each series' validation tail.
        ranges: each series' plausible range (``plausible_range``).
        quiet: no progress bar (one bar over every candidate's epochs otherwise).

    Returns:
        ``(kind, candidate)`` per candidate, in the plans' order.
    """
    from lstmlab.runtime import epoch_progress  # the progress bar (rich) on demand

    trainings = sum(len(plan.norms) for plan in plans)
    with epoch_progress(settings.epochs * trainings, "fit", quiet=quiet) as progress:
        on_epoch = (
            None
            if quiet
            else lambda _, losses, __: progress.advance(
                float(np.nanmean(losses)) if np.isfinite(losses).any() else None
            )
        )
        seeds = [settings.seed + i for i in range(settings.seeds)]
        columns = scaled[0].shape[1]
        out = []
        for plan in plans:
            layout = training_layout(
                plan.settings, ids, scaled, plan.window, settings.horizon, n_val
            )
            train_config = training_config(
                epochs=settings.epochs,
                learning_rate=settings.learning_rate,
                shuffle=not plan.settings.stateful,
                seed=settings.seed,
                patience=settings.patience if layout.validation is not None else None,
            )
            for norm in plan.norms:
                model = plan.settings.model_config(columns, window=plan.window, norm=norm)
                states = initial_states(model, train_config, seeds, layout.batch_size)
                trained, log = fit(
                    model,
                    train_config,
                    states,
                    layout.x_batches,
                    layout.y_batches,
                    validation=layout.validation,
                    validation_state=layout.validation_state,
                    on_epoch=on_epoch,
                )
                candidate = score_candidate(
                    norm, model, trained.params, log, ids, scaled, scalers, n_val, ranges, layout
                )
                out.append((plan.settings.model, candidate))
            del layout  # before the next kind lays out its batches
        return out


def _seasons_and_window(
    settings: ForecasterConfig, parsed: TrainingData
) -> tuple[Seasons, int, str]:
    """The seasons of the shortest series, and the window: given, or covering them."""
    lengths = {i: len(v) for i, v in parsed.values.items()}
    shortest = min(lengths, key=lengths.__getitem__)
    seasons = choose_seasons(parsed.freq, parsed.values[shortest][:, 0], given=settings.seasons)
    if settings.window is not None:
        return seasons, settings.window, f"window {settings.window} (given)"
    choice = choose_window(
        seasons.lengths,
        minimum=MIN_WINDOW,
        maximum=max(MIN_WINDOW, lengths[shortest] // 3),
    )
    return seasons, choice.window, choice.note


def _rollout_scores(
    candidates: Sequence[Candidate],
    recipes: Sequence[Recipe],
    seeds: int,
    scaled: Mapping[str, np.ndarray],
    n_val: Mapping[str, int],
    scalers: Mapping[str, Scaler],
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    capacities: tuple[int, int],
) -> tuple[list[dict[str, np.ndarray]], list[float], int]:
    """Each recursive candidate's rollout residuals across the validation tails, and RMSE.

    A recursive model is scored as it forecasts: every step ahead of its rollouts pooled
    (a direct model's outputs are that already); ``inf`` when no rollout is usable, and
    a candidate whose one-step score is not finite is not rolled out.

    Returns:
        ``(residuals per candidate, scores, the rollout capacity reached)``: the residuals
        of the lowest score only (``lowest``, the one ``fit`` keeps), ``{}`` for the others,
        so that memory holds one candidate's rollouts, not every candidate's.
    """
    read_capacity, horizon_capacity = capacities
    steps = calibration_steps(recipes[0].seasons)
    rolled: list[dict[str, np.ndarray]] = [{} for _ in candidates]
    scores = [c.score for c in candidates]
    best = 0  # the lowest score so far (a tie keeps the earlier, as ``lowest``)
    for k, candidate in enumerate(candidates):
        if np.isfinite(candidate.score):
            network = _Network(
                model=candidate.model, params=candidate.params, recipe=recipes[k], seeds=seeds
            )
            rolled[k], horizon_capacity = _recursive_residuals(
                network, scaled, n_val, scalers, ranges, steps, (read_capacity, horizon_capacity)
            )
            scores[k] = _residual_rmse(rolled[k])
        if k and scores[k] < scores[best]:
            rolled[best], best = {}, k
        elif k:
            rolled[k] = {}
    return rolled, scores, horizon_capacity


def _residual_rmse(residuals: Mapping[str, np.ndarray]) -> float:
    """The RMSE over every residual but NaN (past a series' end, flagged rollouts).

    Series by series, no copy of them all; a function of its own, so that no name outlives
    the call holding a view of a candidate's residuals (a loser's are freed right away).
    """
    total, count = 0.0, 0
    for one in residuals.values():
        known = one[~np.isnan(one)]
        total += float(np.square(known).sum())
        count += known.size
    score = math.sqrt(total / count) if count else math.inf
    return score if np.isfinite(score) else math.inf


def _refitted(
    settings: ForecasterConfig,
    kept: Candidate,
    kind: str,
    name: str,
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    window: int,
    early: bool,
) -> tuple[Params, int | None]:
    """The chosen candidate's parameters, trained again on every reading when ``refit``.

    Returns:
        ``(params, the refit's epochs or None)``.

    Raises:
        ValueError: every seed ended with non-finite weights.
    """
    params, refit_epochs = kept.params, None
    if settings.refit and early and kept.log.best_epoch is not None:
        # The validation tail is the newest part of each series: once it has chosen the
        # model and the epoch count, the model learns from it too (the rule compare keeps).
        # The intervals keep the residuals measured before, out of sample.
        refit_epochs = kept.log.refit_epochs(kept.flags.flagged)
        params = refit(
            dataclasses.replace(settings, model=kind),
            kept.model,
            refit_epochs,
            ids,
            scaled,
            window,
        )
    finite = np.logical_and.reduce(
        [
            np.isfinite(np.asarray(leaf)).reshape(leaf.shape[0], -1).all(axis=1)
            for leaf in jax.tree.leaves(params)
        ]
    )  # (seeds,)
    if not finite.any():
        # Nothing to forecast with: refuse here, before a folder of NaN weights is saved.
        raise ValueError(
            f"training diverged: every seed of {name} ended with non-finite "
            f"weights (learning_rate={settings.learning_rate:g}); pass a smaller "
            f"learning_rate (the default is {ForecasterSettings().learning_rate:g})"
        )
    return params, refit_epochs


def _calibration(
    kept: Candidate,
    rolled: dict[str, np.ndarray],
    ranges: dict[str, tuple[np.ndarray, np.ndarray]],
    values: Mapping[str, np.ndarray],
    pooled: np.ndarray,
) -> Calibration:
    """What ``fit`` keeps of the chosen candidate for the sanity check and the intervals.

    The residuals: a recursive model's rollouts (``rolled``), or a direct model's outputs
    from every origin of the tail, kept from a spread of them.
    """
    residuals = rolled or {
        i: r[calibration_origins(0, len(r) - 1)] for i, r in kept.residuals.items() if r is not None
    }
    return Calibration(
        ranges=ranges,
        default_range=plausible_range(pooled, FORECAST_PLAUSIBLE_FACTOR),
        residuals=residuals,
        extremes={i: (v.min(axis=0), v.max(axis=0)) for i, v in values.items()},
        default_extremes=(pooled.min(axis=0), pooled.max(axis=0)),
    )


def _note_intervals(metrics: dict[str, Any], calibration: Calibration, recipe: Recipe) -> None:
    """Record in ``metrics`` how far the intervals reach, and warn when 90% ones stop short."""
    residuals = calibration.residuals
    steps = calibration.steps(recipe.horizon)
    reach = interval_reach(residuals)
    metrics.update(calibrated_steps=steps, interval_steps=reach)
    fewest = min(int(np.isfinite(r[:, 0, 0]).sum()) for r in residuals.values())
    if reach["90"] < steps:
        metrics.setdefault("warnings", {})["intervals"] = (
            f"the intervals rest on {fewest} validation origin(s) per series (fewest): "
            f"90% intervals reach {reach['90']} step(s) ahead, 95% reach "
            f"{reach['95']}, of the {steps} calibrated; beyond, they "
            "are infinite (a longer series or validation= gives more)"
        )


def _recursive_residuals(
    network: _Network,
    scaled: Mapping[str, np.ndarray],
    n_val: Mapping[str, int],
    scalers: Mapping[str, Scaler],
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    steps: int,
    capacities: tuple[int, int],
) -> tuple[dict[str, np.ndarray], int]:
    """Residuals of the recursive forecasts from origins across each validation tail.

    From up to ``CALIBRATION_ORIGINS`` origins, evenly spread over each series' validation
    tail (its last ``n_val`` readings), the fitted model reads the series up to the origin
    (a stateful model from a zero state, as ``warm_start`` does) and rolls out as
    ``forecast`` does; the residual of the median of the seeds whose rollout is
    plausible (``flag_forecasts`` against the series' range, as ``forecast`` checks) is
    kept per step ahead, NaN past the series' end. The steps are the longest tail, at
    most ``steps``.

    Returns:
        ``(series id -> (origins, steps, columns) residuals in the series' scaled units,
        the rollout capacity reached)``.
    """
    read_capacity, horizon_capacity = capacities
    longest = max((n for n in n_val.values() if n), default=0)
    horizon = max(1, min(longest, steps))
    origins = {
        series_id: calibration_origins(len(series) - n_val[series_id], len(series) - 1)
        for series_id, series in scaled.items()
        if n_val[series_id]
    }
    # Every series' residuals are rows of one block: a candidate that loses frees them at
    # once (50,000 small arrays would stay in the allocator's heap, held by the process).
    counts = [len(spread) for spread in origins.values()]
    first = dict(zip(origins, np.cumsum([0, *counts])[:-1].tolist(), strict=True))
    columns = next(iter(scaled.values())).shape[1]
    block = np.full((sum(counts), horizon, columns), np.nan)
    # Series in groups of about RESIDUAL_ROWS origins: memory stays bounded whatever the
    # number of series (50,000 series of 40 origins are 2,000,000 rollouts).
    groups: list[list[str]] = [[]]
    rows = 0
    for series_id, spread in origins.items():
        if groups[-1] and rows + len(spread) > RESIDUAL_ROWS:
            groups.append([])
            rows = 0
        groups[-1].append(series_id)
        rows += len(spread)
    for group in groups:
        if not group:
            continue
        states, where = _origin_states(network, group, origins, scaled, scalers, read_capacity)
        keys = list(states)
        rolled, horizon_capacity = rollout_states(
            network.model,
            network.params,
            network.recipe,
            [states[k] for k in keys],
            horizon,
            horizon_capacity,
        )  # (seeds, rows, steps, columns)
        rows_of: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            rows_of.setdefault(where[key][0], []).append(row)
        for series_id, series_rows in rows_of.items():  # one series' origins at once
            origin_of = np.array([where[keys[r]][1] for r in series_rows])
            start = first[series_id]
            block[start : start + len(origin_of)] = _residuals(
                rolled[:, series_rows], origin_of, scaled[series_id], scalers[series_id],
                ranges[series_id], horizon,
            )  # fmt: skip
    out = {i: block[first[i] : first[i] + len(spread)] for i, spread in origins.items()}
    return out, horizon_capacity


def _origin_states(
    network: _Network,
    group: Sequence[str],
    origins: Mapping[str, np.ndarray],
    scaled: Mapping[str, np.ndarray],
    scalers: Mapping[str, Scaler],
    read_capacity: int,
) -> tuple[dict[str, SeriesState], dict[str, tuple[str, int]]]:
    """Each series' state at each of its origins: ``(key -> state, key -> (id, origin))``.

    Each series is read once, origin after origin (a stateful model from a zero state, as
    ``warm_start`` reads it; a window model needs only the window before each origin), and
    its state at every origin kept: the series of one round are one read.
    """
    model, window = network.model, network.recipe.window
    states, where = {}, {}
    reached = {i: (fresh_series_state(model, network.seeds, scalers[i]), 0) for i in group}
    for k in range(max(len(origins[i]) for i in group)):
        prepared = {}
        for series_id in group:
            if k >= len(origins[series_id]):
                continue
            state, read_to = reached[series_id]
            origin = int(origins[series_id][k])
            if not model.stateful:
                read_to = max(read_to, origin - window)
            readings = scaled[series_id][read_to:origin].astype(np.float32)
            prepared[series_id] = (state, readings, None, None)
        after = read_states(model, network.params, window, prepared, read_capacity)
        for series_id, state in after.items():
            origin = int(origins[series_id][k])
            reached[series_id] = (state, origin)
            key = f"{series_id}@{origin}"
            states[key], where[key] = state, (series_id, origin)
    return states, where


def _residuals(
    block: np.ndarray,
    origins: np.ndarray,
    series: np.ndarray,
    scaler: Scaler,
    bounds: tuple[np.ndarray, np.ndarray],
    horizon: int,
) -> np.ndarray:
    """One series' residuals ``(origins, steps, columns)`` from every seed's rollouts.

    ``block``: ``(seeds, origins, steps, columns)`` scaled rollouts from ``origins``. A seed's
    rollout from one origin is flagged as ``flag_forecasts`` flags it; the residual is the
    actual minus the median of the unflagged seeds, NaN past the series' end.
    """
    columns = block.shape[-1]
    original = scaler.inverse_transform(block.reshape(-1, columns))
    low, high = bounds
    with np.errstate(invalid="ignore"):
        flagged = (
            (~np.isfinite(original) | (original < low) | (original > high))
            .reshape(block.shape)
            .any(axis=(2, 3))
        )  # (seeds, origins)
    block = block.astype(np.float64)
    median = np.empty(block.shape[1:])  # (origins, steps, columns)
    sound = ~flagged.any(axis=0)  # no seed flagged: the median over all, at once
    median[sound] = np.median(block[:, sound], axis=0)
    for j in np.flatnonzero(~sound):
        median[j] = seed_ensemble(block[:, j : j + 1], flagged[:, j])[0, 0]
    series = series.astype(np.float64)
    steps = origins[:, None] + np.arange(horizon)
    seen = steps < len(series)
    actual = np.full((len(origins), horizon, series.shape[1]), np.nan)  # NaN past the end
    actual[seen] = series[steps[seen]]
    return actual - median
