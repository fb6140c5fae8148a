"""Every data layout: windows, sample batches (stateless and official), streams; TrimReport.

- ``make_windows``: a series into sliding windows and their targets.
- ``make_sample_batches`` (also named ``make_official_batches``): samples into consecutive
  batches, the stateless layout and the official example's.
- ``make_stream_batches`` / ``make_series_streams``: the stateful stream layout, where row
  ``i`` of batch ``k + 1`` continues row ``i`` of batch ``k`` (a stateful LSTM carries row
  ``i``'s state from one batch into the next, so row ``i`` of every batch must come from one
  contiguous stream of the data, in order).
- ``make_training_batches``: every series' samples laid out for a stateful or a window model,
  the one policy of ``Forecaster.fit`` and ``compare`` (batch growth, validation batches);
  ``make_window_training_batches`` lays out the same windows as indices into the series,
  which the training driver cuts inside its compiled epoch (``Forecaster.fit``).

One trim vocabulary everywhere (``check_trim``): ``"error"`` refuses data that do not fill
whole batches and names the fix, ``"start"`` drops the oldest, ``"end"`` the newest; what is
left out is counted in a ``TrimReport``.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmlab.checks import (
    as_float_array,
    as_float_samples,
    check_choice,
    check_non_negative_int,
    check_positive_int,
)

__all__ = [
    "OfficialBatches",
    "SampleBatches",
    "StreamBatches",
    "TrainingBatches",
    "TrimReport",
    "Windows",
    "MAX_BATCHES_PER_EPOCH",
    "check_trim",
    "grown_batch_size",
    "make_official_batches",
    "make_sample_batches",
    "make_series_streams",
    "make_stream_batches",
    "make_training_batches",
    "make_window_training_batches",
    "make_windows",
]

_TRIM_MODES = ("start", "end", "error")

# A long series grows the default batch so that one epoch is at most this many batches, each a
# sequential update (a half-hourly year would otherwise be thousands of updates of a few
# samples per epoch: hours on two cores, for no better a model).
MAX_BATCHES_PER_EPOCH = 256
_LAYOUTS = ("stream", "official")


@dataclass(frozen=True, kw_only=True, slots=True)
class TrimReport:
    """What a layout used and what it left out; nothing is dropped without being counted here.

    Attributes:
        total: samples (or steps) given, over all series.
        used: samples (or steps) laid out in batches.
        trimmed_start: left out at the start of the series (summed over series).
        trimmed_end: left out at the end of the series (summed over series).
        batch_size: rows per batch (streams, in the stream layout).
        num_batches: batches made.
        per_series: ``(trimmed_start, trimmed_end)`` for each series, in order; one entry
            when there is one series.
        unit: ``"samples"`` or ``"steps"``, for the message.
        chunk: steps per row of a batch in the step-level stream layout, else ``None``.
        layout: ``"stream"`` or ``"official"``, for the message.

    """

    total: int
    used: int
    trimmed_start: int
    trimmed_end: int
    batch_size: int
    num_batches: int
    per_series: tuple[tuple[int, int], ...]
    unit: str = "samples"
    chunk: int | None = None
    layout: str = "stream"

    def __post_init__(self) -> None:
        if self.used + self.trimmed_start + self.trimmed_end != self.total:
            raise ValueError(
                f"a TrimReport must account for every {self.unit[:-1]}: used ({self.used}) + "
                f"trimmed_start ({self.trimmed_start}) + trimmed_end ({self.trimmed_end}) != "
                f"total ({self.total}); fix the counts"
            )
        check_choice("layout", self.layout, _LAYOUTS)

    @property
    def trimmed(self) -> int:
        """Samples (or steps) left out: ``total - used``."""
        return self.trimmed_start + self.trimmed_end

    def __str__(self) -> str:
        """One line, e.g. ``used 992 of 1000 samples in 32 streams x 31 batches; ...``."""
        if self.layout == "official":
            where = f"in {self.num_batches} batches of {self.batch_size}"
        else:
            where = f"in {self.batch_size} streams x {self.num_batches} batches"
            if self.chunk is not None:
                where += f" of {self.chunk} steps"
        if len(self.per_series) > 1:
            where += f" from {len(self.per_series)} series"
        parts = []
        if self.trimmed_start:
            parts.append(f"{self.trimmed_start} at the start")
        if self.trimmed_end:
            parts.append(f"{self.trimmed_end} at the end")
        trimmed = "trimmed " + " and ".join(parts) if parts else "trimmed nothing"
        return f"used {self.used} of {self.total} {self.unit} {where}; {trimmed}"


def grown_batch_size(batch_size: int, samples: int, *, steps_per_row: int = 1) -> int:
    """The batch size that keeps an epoch at most ``MAX_BATCHES_PER_EPOCH`` batches.

    The one rule of ``compare`` and the ``Forecaster`` for a default batch size on a long
    series: ``batch_size``, or more where ``samples`` would fill more batches than that.

    Args:
        batch_size: the batch size asked for (samples per batch, or streams per series).
        samples: the samples to lay out (or the steps of one series' stream).
        steps_per_row: the steps one row of a batch holds (a stream layout's ``chunk``); 1 for
            one sample per row.

    Example:
        >>> grown_batch_size(4, 1000), grown_batch_size(4, 3000)
        (4, 12)
        >>> grown_batch_size(1, 3000, steps_per_row=49)
        1
    """
    check_positive_int("batch_size", batch_size)
    check_non_negative_int("samples", samples)
    check_positive_int("steps_per_row", steps_per_row)
    return max(batch_size, -(-samples // (MAX_BATCHES_PER_EPOCH * steps_per_row)))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class _Batched:
    """The counts of batches laid out ``(num_batches, batch_size, ...)`` in ``x_batches``."""

    __slots__ = ()
    x_batches: np.ndarray

    @property
    def num_batches(self) -> int:
        """Batches per epoch (for streams: the length of each stream in batches)."""
        return int(self.x_batches.shape[0])

    @property
    def batch_size(self) -> int:
        """Rows per batch (for streams: one per stream)."""
        return int(self.x_batches.shape[1])


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class StreamBatches(_Batched):
    """Batches in the stream layout (the arrays are read-only).

    Row ``i`` of every batch belongs to stream ``i``; batch ``k + 1`` continues batch ``k``.

    Attributes:
        x_batches: ``(num_batches, batch_size, ...)`` inputs; from ``make_series_streams``
            ``(num_batches, batch_size, chunk, features)``.
        y_batches: ``(num_batches, batch_size, ...)`` targets, laid out like ``x_batches``.
        trim: what was used and what was trimmed.
        stream_series: ``(batch_size,)`` int64, the series each row comes from.
        stream_start: ``(batch_size,)`` int64, the index (sample, or step within its series)
            where each row's stream starts.
        chunk: steps per row of a batch for ``make_series_streams``; ``None`` at the sample
            level.

    """

    x_batches: np.ndarray
    y_batches: np.ndarray
    trim: TrimReport
    stream_series: np.ndarray
    stream_start: np.ndarray
    chunk: int | None = None

    @property
    def num_series(self) -> int:
        """Series the streams were cut from."""
        return len(self.trim.per_series)

    def _check_layout(self, batches: Any) -> np.ndarray:
        batches = np.asarray(batches)
        lead = (self.num_batches, self.batch_size)
        if self.chunk is not None:
            lead += (self.chunk,)
        if batches.shape[: len(lead)] != lead:
            names = "(num_batches, batch_size"
            names += ", chunk, ...)" if self.chunk is not None else ", ...)"
            raise ValueError(
                f"batches must be laid out as {names} = {lead + ('...',)}, got shape "
                f"{batches.shape}; pass an array laid out like x_batches, e.g. predictions"
            )
        return batches

    def to_samples(self, batches: Any) -> np.ndarray:
        """Put an array laid out like ``x_batches`` (e.g. predictions) back in time order.

        Args:
            batches: ``(num_batches, batch_size, ...)`` at the sample level, or
                ``(num_batches, batch_size, chunk, ...)`` for one series cut into steps.

        Returns:
            ``(num_batches * batch_size, ...)`` samples in chronological order (sample ``j``
            is the ``j``-th used sample), or ``(num_batches * batch_size * chunk, ...)``
            steps for one series.

        Raises:
            ValueError: ``batches`` is not laid out like ``x_batches``, or the streams come
                from several series (use ``to_series``).

        """
        if self.num_series != 1:
            raise ValueError(
                f"to_samples needs streams from one series, these come from {self.num_series}; "
                "use to_series to get one array per series"
            )
        return self.to_series(batches)[0]

    def to_series(self, batches: Any) -> list[np.ndarray]:
        """Put an array laid out like ``x_batches`` back into one time-ordered array per series.

        Args:
            batches: ``(num_batches, batch_size, chunk, ...)`` (or ``(num_batches,
                batch_size, ...)`` at the sample level).

        Returns:
            A list with one ``(used_steps, ...)`` array per series, in series order; the
            steps of series ``j`` start at ``stream_start`` of its first row.

        Raises:
            ValueError: ``batches`` is not laid out like ``x_batches``.

        """
        batches = self._check_layout(batches)
        # (num_batches, batch_size, [chunk,] ...) -> (batch_size, num_batches, [chunk,] ...)
        rows = np.swapaxes(batches, 0, 1)
        per_series = self.batch_size // self.num_series
        tail = batches.shape[3:] if self.chunk is not None else batches.shape[2:]
        return [
            # (streams, num_batches, [chunk,] ...) -> (used, ...): stream after stream
            rows[j * per_series : (j + 1) * per_series].reshape(-1, *tail)
            for j in range(self.num_series)
        ]


def _one_series_trim(
    n: int, used: int, start: int, *, batch_size: int, num_batches: int, layout: str = "stream"
) -> TrimReport:
    # samples [start, start + used) of one series of n are used; the rest is trimmed
    trimmed = (start, n - used - start)
    return TrimReport(
        total=n,
        used=used,
        trimmed_start=trimmed[0],
        trimmed_end=trimmed[1],
        batch_size=batch_size,
        num_batches=num_batches,
        per_series=(trimmed,),
        layout=layout,
    )


def check_trim(trim: Any) -> str:
    """Check a trim mode: ``"error"``, ``"start"`` or ``"end"`` (the one trim vocabulary).

    Args:
        trim: the mode to check.

    Returns:
        ``trim``, unchanged.

    Raises:
        ValueError: anything else (a bool included: ``True`` does not say which end).

    """
    # Its own message (not check_choice's): it lists the modes in words, as users read them.
    if not isinstance(trim, str) or trim not in _TRIM_MODES:
        raise ValueError(
            f"trim must be one of 'start', 'end' or 'error', got {trim!r}; pass 'start' to "
            "keep the most recent data"
        )
    return trim


def make_stream_batches(x: Any, y: Any, *, batch_size: int, trim: str = "start") -> StreamBatches:
    """Lay out samples as ``batch_size`` contiguous streams, for stateful training.

    With ``S = n // batch_size`` samples per stream and ``off`` the samples trimmed at the
    start, stream ``i`` holds samples ``off + i * S`` to ``off + (i + 1) * S - 1``, and row
    ``i`` of batch ``k`` is sample ``off + i * S + k``: row ``i`` of batch ``k + 1`` is the
    sample right after row ``i`` of batch ``k``, so a state carried across batches follows
    the series.

    Args:
        x: ``(samples, ...)`` inputs in chronological order, e.g. ``(samples, time,
            features)`` windows.
        y: ``(samples, ...)`` targets, one per sample.
        batch_size: rows per batch, one per stream.
        trim: where the ``n - batch_size * S`` leftover samples go: ``"start"`` drops the
            oldest (keeps the most recent data), ``"end"`` the newest, ``"error"`` raises.

    Returns:
        ``StreamBatches`` with ``x_batches`` ``(S, batch_size, ...)`` and ``y_batches``
        ``(S, batch_size, ...)``.

    Raises:
        ValueError: ``batch_size`` is not a positive int, ``trim`` is unknown, ``x`` and ``y``
            differ in samples, hold NaN or infinite values, there are fewer samples than
            ``batch_size``, or ``trim="error"`` and samples are left over.

    Example:
        >>> b = make_stream_batches(np.arange(7), np.arange(7), batch_size=2)
        >>> b.x_batches.tolist()
        [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
        >>> print(b.trim)
        used 6 of 7 samples in 2 streams x 3 batches; trimmed 1 at the start

    """
    check_positive_int("batch_size", batch_size)
    check_trim(trim)
    x = as_float_samples("x", x)
    y = as_float_samples("y", y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(
            f"x and y must hold the same number of samples, got {n} and {y.shape[0]}; pass "
            "one target per sample"
        )
    if n < batch_size:
        raise ValueError(
            f"x holds {n} samples, too few for {batch_size} streams: one sample per stream "
            f"needs batch_size = {batch_size} samples; pass a smaller batch_size or more samples"
        )
    per_stream = n // batch_size
    leftover = n - batch_size * per_stream
    if leftover and trim == "error":
        raise ValueError(
            f"{n} samples do not split into {batch_size} equal streams: {leftover} are left "
            f"over; pass trim='start' or trim='end' to drop them, or choose a batch_size that "
            f"divides {n}"
        )
    start = leftover if trim == "start" else 0
    used = batch_size * per_stream
    report = _one_series_trim(n, used, start, batch_size=batch_size, num_batches=per_stream)
    return StreamBatches(
        x_batches=_as_streams(x, batch_size, start),
        y_batches=_as_streams(y, batch_size, start),
        trim=report,
        stream_series=_read_only(np.zeros(batch_size, dtype=np.int64)),
        stream_start=_read_only(start + np.arange(batch_size, dtype=np.int64) * per_stream),
    )


def _as_streams(samples: np.ndarray, streams: int, start: int) -> np.ndarray:
    """Samples ``start`` on as ``streams`` contiguous streams, ``(per_stream, streams, ...)``.

    The stream layout's one arrangement (``make_stream_batches``, ``make_training_batches``):
    stream ``i`` holds the next ``per_stream = (len - start) // streams`` samples after stream
    ``i - 1``'s, and batch ``k`` holds step ``k`` of every stream.
    """
    per_stream = (len(samples) - start) // streams
    used = samples[start : start + streams * per_stream]
    rows = used.reshape(streams, per_stream, *samples.shape[1:])
    # (streams, S, ...) -> (S, streams, ...): batch k holds step k of every stream
    return _read_only(np.swapaxes(rows, 0, 1).copy())


def _series_list(name: str, series: Any) -> list[np.ndarray]:
    """One array or a list of them, each as float32 ``(time, columns)``."""
    many = isinstance(series, list | tuple)
    items = list(series) if many else [series]
    if not items:
        raise ValueError(f"{name} must hold at least one series, got an empty list")
    out = []
    for j, item in enumerate(items):
        label = f"{name}[{j}]" if many else name
        array = as_float_array(label, item, ndim=(1, 2))
        out.append(array[:, None] if array.ndim == 1 else array)  # (time,) -> (time, 1)
        if out[-1].shape[1] != out[0].shape[1]:
            raise ValueError(
                f"{label} has {out[-1].shape[1]} columns, {name}[0] has {out[0].shape[1]}; "
                "give every series the same columns"
            )
    return out


def make_series_streams(
    values: Any,
    targets: Any = None,
    *,
    batch_size: int,
    chunk: int,
    trim: str = "start",
) -> StreamBatches:
    """Cut one long series, or several, into contiguous streams of ``chunk``-step pieces.

    Each series is cut into ``batch_size // number_of_series`` adjacent streams of equal
    length; each stream into chunks of ``chunk`` steps; batch ``k`` holds chunk ``k`` of every
    stream. Row ``i`` of batch ``k + 1`` starts at the step right after the last step of row
    ``i`` of batch ``k``. Rows are ordered series by series: series 0's streams first (in time
    order), then series 1's, and so on; ``stream_series`` and ``stream_start`` record each
    row's series and first step.

    Every stream gets the same number of chunks, the most the shortest series allows; the
    steps of each series that do not fill its streams are trimmed at the start (``"start"``,
    keeps the most recent data) or the end (``"end"``) and counted per series in the report;
    ``"error"`` raises instead.

    With ``targets=None`` the model learns next-step prediction: the inputs are
    ``values[:-1]`` and the targets ``values[1:]``, so a series of ``T`` values gives ``T - 1``
    steps, and step ``t`` reads ``values[t]`` and predicts ``values[t + 1]``.

    Args:
        values: ``(time, features)`` or ``(time,)``, or a list of such series.
        targets: aligned with ``values`` step for step: ``targets[t]`` is what the model should
            output after reading ``values[t]``; ``(time, target_columns)`` or ``(time,)``, or
            a list matching ``values``. ``None``: next-step prediction, as above.
        batch_size: rows per batch; a multiple of the number of series.
        chunk: steps per row of a batch (the time axis of one batch).
        trim: ``"start"``, ``"end"`` or ``"error"``, as above.

    Returns:
        ``StreamBatches`` with ``x_batches`` ``(num_batches, batch_size, chunk, features)``
        and ``y_batches`` ``(num_batches, batch_size, chunk, target_columns)``.

    Raises:
        ValueError: ``batch_size`` or ``chunk`` is not a positive int, ``trim`` is unknown,
            ``batch_size`` is not a multiple of the number of series, ``targets`` does not
            match ``values``, the data hold NaN or infinite values, a series is too short for
            one chunk per stream, or ``trim="error"`` and steps are left over.

    Example:
        >>> b = make_series_streams(np.arange(9.0), batch_size=2, chunk=2)
        >>> b.x_batches[:, :, :, 0].tolist()
        [[[0.0, 1.0], [4.0, 5.0]], [[2.0, 3.0], [6.0, 7.0]]]

    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("chunk", chunk)
    check_trim(trim)
    several = isinstance(values, list | tuple)
    inputs = _series_list("values", values)
    if targets is None:
        # next-step prediction: step t reads values[t] and predicts values[t + 1]
        outputs = [series[1:] for series in inputs]
        inputs = [series[:-1] for series in inputs]
    else:
        if isinstance(targets, list | tuple) != several or (
            several and len(targets) != len(inputs)
        ):
            given = f"a list of {len(targets)}" if isinstance(targets, list | tuple) else "one"
            wanted = f"a list of {len(inputs)}" if several else "one array"
            raise ValueError(
                f"targets must match values: values gives {wanted} series, targets {given}; "
                "pass targets shaped like values"
            )
        outputs = _series_list("targets", targets)
        for j, (x_j, y_j) in enumerate(zip(inputs, outputs, strict=True)):
            if x_j.shape[0] != y_j.shape[0]:
                label = f"[{j}]" if several else ""
                raise ValueError(
                    f"targets{label} must have one row per step of values{label} "
                    f"({x_j.shape[0]}), got {y_j.shape[0]}; align targets with values step "
                    "for step"
                )
    num_series = len(inputs)
    if batch_size % num_series:
        raise ValueError(
            f"batch_size must be a multiple of the number of series ({num_series}), got "
            f"{batch_size}; pass a batch_size such as "
            f"{num_series * max(1, batch_size // num_series)}"
        )
    streams = batch_size // num_series
    lengths = [x_j.shape[0] for x_j in inputs]
    needed = streams * chunk
    for j, steps in enumerate(lengths):
        if steps < needed:
            which = f"series {j} has" if several else "the series has"
            rule = "streams_per_series * chunk" if several else "batch_size * chunk"
            note = " (its values less the first, used only as a target)" if targets is None else ""
            raise ValueError(
                f"{which} {steps} steps{note}, too short for one chunk per stream: it needs "
                f"{rule} = {streams} * {chunk} = {needed} steps; pass a smaller batch_size or "
                "chunk"
            )
    num_batches = min(lengths) // needed
    used = num_batches * needed  # steps used per series
    per_series = []
    for j, steps in enumerate(lengths):
        leftover = steps - used
        if leftover and trim == "error":
            which = f"series {j}" if several else "the series"
            raise ValueError(
                f"{which} has {steps} steps, {leftover} more than {streams} stream(s) x "
                f"{num_batches} chunk(s) of {chunk} steps use; pass trim='start' or "
                "trim='end' to drop them, or choose batch_size and chunk to fit"
            )
        per_series.append((leftover, 0) if trim == "start" else (0, leftover))

    def lay_out(series: list[np.ndarray]) -> np.ndarray:
        rows = [
            # (used, columns) -> (streams, num_batches, chunk, columns)
            s[start : start + used].reshape(streams, num_batches, chunk, s.shape[1])
            for s, (start, _) in zip(series, per_series, strict=True)
        ]
        # (batch_size, num_batches, chunk, columns) -> (num_batches, batch_size, chunk, columns)
        return _read_only(np.swapaxes(np.concatenate(rows), 0, 1).copy())

    stream_offsets = np.arange(streams, dtype=np.int64) * num_batches * chunk
    report = TrimReport(
        total=sum(lengths),
        used=used * num_series,
        trimmed_start=sum(start for start, _ in per_series),
        trimmed_end=sum(end for _, end in per_series),
        batch_size=batch_size,
        num_batches=num_batches,
        per_series=tuple(per_series),
        unit="steps",
        chunk=chunk,
    )
    return StreamBatches(
        x_batches=lay_out(inputs),
        y_batches=lay_out(outputs),
        trim=report,
        stream_series=_read_only(np.repeat(np.arange(num_series, dtype=np.int64), streams)),
        stream_start=_read_only(
            np.concatenate([start + stream_offsets for start, _ in per_series])
        ),
        chunk=chunk,
    )


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Windows:
    """Windows cut from one series, in chronological order (the arrays are read-only).

    Attributes:
        x: inputs, ``(samples, length, features)`` float32.
        y: targets, ``(samples, horizon * target_columns)`` float32, step-major: the first
            ``target_columns`` entries are the first target step.
        starts: ``(samples,)`` int64, the series index of each sample's first input step.
        target_index: ``(samples,)`` int64, the series index of each sample's first target step.

    """

    x: np.ndarray
    y: np.ndarray
    starts: np.ndarray
    target_index: np.ndarray

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.x.shape[0])


def _as_columns(name: str, array: Any) -> np.ndarray:
    """``(time,)`` or ``(time, columns)`` as float32 ``(time, columns)``."""
    array = as_float_array(name, array, ndim=(1, 2))
    return array[:, None] if array.ndim == 1 else array  # (time,) -> (time, 1)


def make_windows(
    values: Any,
    targets: Any = None,
    *,
    length: int,
    stride: int = 1,
    sampling_rate: int = 1,
    offset: int = 1,
    horizon: int = 1,
) -> Windows:
    """Cut a series into sliding windows and their targets.

    Sample ``i`` starts at ``s_i = i * stride`` and reads ``values[s_i + j * sampling_rate]``
    for ``j`` in ``range(length)``; its last input step is
    ``e_i = s_i + (length - 1) * sampling_rate``, and its targets are
    ``targets[e_i + offset + k]`` for ``k`` in ``range(horizon)``. Only windows whose inputs
    and targets all lie inside the series are made.

    ``offset=1`` predicts the step after the window; ``offset=0`` aligns the target with the
    last input step (a filter, as in the moving-average example).

    The Keras call ``keras.utils.timeseries_dataset_from_array(data,
    targets=data[length:], sequence_length=length)`` (and the older
    ``TimeseriesGenerator(data, data, length=length)``) gives the same samples as
    ``make_windows(data, length=length)``, that is ``offset=1``: Keras pairs the window
    starting at ``p`` with ``targets[p]``, so ``targets=data[(length - 1) * sampling_rate +
    offset:]`` reproduces any ``offset``, with ``sequence_stride=stride`` and the same
    ``sampling_rate``. Keras gives ``(samples, length)`` for a 1-D series where this gives
    ``(samples, length, 1)``.

    Args:
        values: the inputs, ``(time,)`` or ``(time, features)``; 1-D becomes ``(time, 1)``.
        targets: what to predict, ``(time,)`` or ``(time, target_columns)``, aligned with
            ``values`` step for step; ``None`` uses ``values``.
        length: input steps per window.
        stride: steps between the starts of consecutive windows.
        sampling_rate: steps between consecutive inputs inside a window.
        offset: steps from the last input to the first target, ``>= 0``.
        horizon: consecutive target steps per window.

    Returns:
        ``Windows`` with ``x`` ``(samples, length, features)`` and ``y``
        ``(samples, horizon * target_columns)``.

    Raises:
        ValueError: a parameter is not a positive int, ``offset`` is negative, the arrays hold
            NaN or infinite values or have the wrong shape, ``targets`` and ``values`` differ
            in length, or the series is too short for one window.

    Example:
        >>> w = make_windows(np.arange(6.0), length=3)
        >>> w.x[:, :, 0].tolist(), w.y[:, 0].tolist()
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [3.0, 4.0, 5.0])

    """
    for name, value in (
        ("length", length),
        ("stride", stride),
        ("sampling_rate", sampling_rate),
        ("horizon", horizon),
    ):
        check_positive_int(name, value)
    check_non_negative_int(
        "offset",
        offset,
        fix="pass 1 to predict the next step or 0 to align the target with the last input",
    )
    values = _as_columns("values", values)
    targets = values if targets is None else _as_columns("targets", targets)
    steps = values.shape[0]
    if targets.shape[0] != steps:
        raise ValueError(
            f"targets must have one row per step of values ({steps}), got {targets.shape[0]}; "
            "align targets with values step for step (the offset shifts them)"
        )
    needed = (length - 1) * sampling_rate + offset + horizon
    if steps < needed:
        raise ValueError(
            f"the series has {steps} steps, too short for one window: one window needs "
            f"(length - 1) * sampling_rate + offset + horizon = {needed} steps "
            f"(length={length}, sampling_rate={sampling_rate}, offset={offset}, "
            f"horizon={horizon}); pass a shorter window or a longer series"
        )
    samples = (steps - needed) // stride + 1
    starts = np.arange(samples, dtype=np.int64) * stride  # (samples,)
    input_index = starts[:, None] + np.arange(length, dtype=np.int64) * sampling_rate
    x = values[input_index]  # (samples, length) indices -> (samples, length, features)
    target_index = starts + (length - 1) * sampling_rate + offset  # (samples,)
    output_index = target_index[:, None] + np.arange(horizon, dtype=np.int64)
    # (samples, horizon, target_columns) -> (samples, horizon * target_columns), step-major
    y = targets[output_index].reshape(samples, horizon * targets.shape[1])
    return Windows(
        x=_read_only(x),
        y=_read_only(y),
        starts=_read_only(starts),
        target_index=_read_only(target_index),
    )


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SampleBatches(_Batched):
    """Samples cut into consecutive batches (the arrays are read-only).

    The layout of stateless training and of the official example (``OfficialBatches`` is
    this class).

    Attributes:
        x_batches: ``(num_batches, batch_size, ...)`` inputs; batch ``k`` holds the used
            samples ``k * batch_size`` to ``(k + 1) * batch_size - 1``.
        y_batches: ``(num_batches, batch_size, ...)`` targets, laid out like ``x_batches``,
            or ``None`` (prediction only).
        trim: what was used and what was trimmed.

    """

    x_batches: np.ndarray
    y_batches: np.ndarray | None
    trim: TrimReport

    def to_samples(self, batches: Any) -> np.ndarray:
        """Put an array laid out like ``x_batches`` (e.g. predictions) back in sample order.

        Args:
            batches: ``(num_batches, batch_size, ...)``.

        Returns:
            ``(num_batches * batch_size, ...)``, used sample ``j`` at row ``j``.

        Raises:
            ValueError: ``batches`` is not laid out like ``x_batches``.

        """
        batches = np.asarray(batches)
        lead = (self.num_batches, self.batch_size)
        if batches.shape[:2] != lead:
            raise ValueError(
                f"batches must be laid out as (num_batches, batch_size, ...) = "
                f"{lead + ('...',)}, got shape {batches.shape}; pass an array laid out like "
                "x_batches, e.g. predictions"
            )
        # (num_batches, batch_size, ...) -> (num_batches * batch_size, ...): batches in order
        return batches.reshape(-1, *batches.shape[2:])


OfficialBatches = SampleBatches
"""The official example's name for ``SampleBatches``: the same layout."""


def make_sample_batches(x: Any, y: Any, *, batch_size: int, trim: str = "error") -> SampleBatches:
    """Cut samples into consecutive batches: the one cutter of stateless (window) batches.

    Batch ``k`` holds the used samples ``k * B`` to ``(k + 1) * B - 1`` (``B = batch_size``),
    as Keras' ``fit(shuffle=False)`` does in the official example. With a stateful model
    this differs from the stream layout as soon as ``B > 1``: row ``i`` of batch ``k + 1`` is
    sample ``(k + 1) * B + i``, which comes ``B`` steps after sample ``k * B + i``, so the
    state carried into a sample comes from ``B`` steps back in the series, not from the
    previous step. Row ``i`` thus follows the subseries ``data[i::B]``; the seed script's
    comment says so: "we train batch_size series at a lower resolution, each offset by one
    step, extractable with data_input[i::batch_size]". The stream layout
    (``make_stream_batches``) instead makes row ``i`` of batch ``k + 1`` the sample right
    after row ``i`` of batch ``k``. With ``B = 1`` the two layouts agree.

    Args:
        x: ``(samples, ...)`` inputs in chronological order.
        y: ``(samples, ...)`` targets, one per sample, or ``None`` (prediction only;
            ``y_batches`` is then ``None``).
        batch_size: samples per batch.
        trim: where the ``n % batch_size`` samples that do not fill a batch go: ``"error"``
            raises (naming the fix), ``"start"`` drops the oldest (keeps the most recent
            data), ``"end"`` drops the newest; either way they are counted in the report.

    Returns:
        ``SampleBatches`` with ``x_batches`` ``(n // batch_size, batch_size, ...)``.

    Raises:
        ValueError: ``batch_size`` is not a positive int, ``trim`` is unknown, ``x`` and
            ``y`` differ in samples or hold NaN or infinite values, there are fewer samples
            than ``batch_size``, or ``n`` is not a multiple of ``batch_size`` and ``trim``
            is ``"error"``.

    Example:
        >>> b = make_sample_batches(np.arange(6), np.arange(6), batch_size=2)
        >>> b.x_batches.tolist()
        [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
        >>> print(make_sample_batches(np.arange(7), None, batch_size=2, trim="start").trim)
        used 6 of 7 samples in 3 batches of 2; trimmed 1 at the start

    """
    check_positive_int("batch_size", batch_size)
    check_trim(trim)
    x = as_float_samples("x", x)
    y = None if y is None else as_float_samples("y", y)
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(
            f"x and y must hold the same number of samples, got {n} and {y.shape[0]}; pass "
            "one target per sample"
        )
    if n < batch_size:
        raise ValueError(
            f"x holds {n} samples, too few for one batch of batch_size={batch_size}; pass a "
            "smaller batch_size or more samples"
        )
    remainder = n % batch_size
    if remainder and trim == "error":
        raise ValueError(
            f"{n} samples are not a multiple of batch_size={batch_size} (remainder "
            f"{remainder}); pass trim='end' to drop the last {remainder} samples or "
            f"trim='start' to drop the first {remainder}, or choose a batch_size that "
            f"divides {n}"
        )
    num_batches = n // batch_size
    used = num_batches * batch_size
    start = remainder if trim == "start" else 0
    report = _one_series_trim(
        n, used, start, batch_size=batch_size, num_batches=num_batches, layout="official"
    )
    y_batches = None if y is None else _as_sample_batches(y, batch_size, start)
    return SampleBatches(
        x_batches=_as_sample_batches(x, batch_size, start), y_batches=y_batches, trim=report
    )


def _as_sample_batches(samples: np.ndarray, batch_size: int, start: int) -> np.ndarray:
    """Samples ``start`` on in consecutive batches, ``(num_batches, batch_size, ...)``.

    The window models' one arrangement (``make_sample_batches``, ``make_training_batches``):
    batch ``k`` holds the next ``batch_size`` samples after batch ``k - 1``'s; the samples
    that do not fill a batch at the end are left out.
    """
    num_batches = (len(samples) - start) // batch_size
    used = samples[start : start + num_batches * batch_size]
    # (used, ...) -> (num_batches, batch_size, ...): consecutive samples share a batch.
    # No copy: a float32 input is laid out as a read-only view of the caller's array (a
    # 312 MB input costs no second 312 MB), any other input was converted into a new one.
    # The caller must not change the array while its batches are in use.
    return _read_only(used.reshape(num_batches, batch_size, *samples.shape[1:]))


make_official_batches = make_sample_batches
"""The official example's name for ``make_sample_batches``: the same function."""


# --------------------------------------------------------------------------- training batches


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class TrainingBatches:
    """A model's training batches from every series' samples, and its validation batches.

    Attributes:
        x_batches: ``(batches, rows, ...)`` inputs, or the ``WindowBatches`` that stand for
            them (``make_window_training_batches``).
        y_batches: ``(batches, rows, ...)`` targets (or their ``WindowBatches``).
        validation: ``(x, y)`` validation batches with the training batches' rows, or ``None``.
        validation_state: ``"carry"`` when every series is one stream that continues into its
            validation samples (the driver carries the state on), else ``"zeros"``.
        batch_size: rows per batch.
        streams: streams per series (a stateful layout), else ``None``.
        trim: what the training batches used and left out, over every series.
    """

    x_batches: Any
    y_batches: Any
    validation: tuple[Any, Any] | None
    validation_state: str
    batch_size: int
    streams: int | None
    trim: TrimReport


def make_training_batches(
    train: Any,
    validation: Any = None,
    *,
    stateful: bool,
    batch_size: int,
    grow: bool,
) -> TrainingBatches:
    """Lay out every series' samples for a stateful or a window model: the one policy.

    ``Forecaster.fit`` (through ``make_window_training_batches``) and ``compare`` both train
    on these batches.

    - Stateful: each series gives ``streams`` contiguous streams (``make_stream_batches``),
      rows series-major; every series keeps its newest samples, as many as the shortest one
      has. ``streams`` is ``batch_size``, grown on a long series (``grown_batch_size``) when
      ``grow``, at most the samples and the validation samples of a series. One stream per
      series carries its state into the validation samples; several start them from zero.
    - Window models: the samples of every series pooled, series after series, in batches of
      ``batch_size`` (grown over the pool when ``grow``), the oldest left-overs dropped;
      the validation batches have the same size.

    Args:
        train: ``(x, y)`` of each series, its samples in chronological order.
        validation: ``(x, y)`` of each series' validation samples (right after its training
            samples), or ``None``.
        stateful: the stream layout (a stateful model) or pooled samples (a window model).
        batch_size: streams per series (stateful) or samples per batch.
        grow: grow ``batch_size`` on a long series (a default); ``False`` keeps it (a given one).

    Returns:
        ``TrainingBatches``.
    """

    def as_samples(parts: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = [(as_float_samples("x", x), as_float_samples("y", y)) for x, y in parts]
        for x, y in pairs:
            if len(x) != len(y):
                raise ValueError(
                    f"x and y must hold the same number of samples, got {len(x)} and "
                    f"{len(y)}; pass one target per sample"
                )
        return pairs

    laid, val, state, trim, streams = _arranged(
        as_samples(train),
        None if validation is None else as_samples(validation),
        stateful=stateful,
        batch_size=batch_size,
        grow=grow,
    )
    return TrainingBatches(
        x_batches=laid[0],
        y_batches=laid[1],
        validation=val,
        validation_state=state,
        batch_size=laid[0].shape[1],
        streams=streams,
        trim=trim,
    )


def make_window_training_batches(
    series: Any,
    tails: Any,
    *,
    window: int,
    horizon: int,
    stateful: bool,
    batch_size: int,
    grow: bool,
) -> TrainingBatches:
    """``make_training_batches`` of every window of every series, cut inside the program.

    The samples are those of ``make_windows(series[:fit_end], length=window,
    horizon=horizon)`` for the training part of each series (``fit_end`` its length less
    its tail), and of its last ``tail`` steps for the validation, laid out by the same
    policy, in the same order; the batches are ``WindowBatches`` over the series put one
    after the other, so the windows are not made on the host (the driver cuts each batch
    when it trains on it).

    Args:
        series: each series' ``(time, columns)`` values, float32.
        tails: each series' validation tail (steps, 0 for none).
        window: input steps per sample.
        horizon: target steps per sample.
        stateful: as ``make_training_batches``.
        batch_size: as ``make_training_batches``.
        grow: as ``make_training_batches``.

    Returns:
        ``TrainingBatches`` whose batches are ``WindowBatches``.
    """
    from lstmlab.core.train import WindowBatches  # the driver's form; JAX only when used

    values = [_as_columns("series", one) for one in series]
    lengths = [len(one) for one in values]
    first = np.cumsum([0, *lengths[:-1]], dtype=np.int64)  # each series' first step
    if sum(lengths) >= 2**31:
        raise ValueError(
            f"{sum(lengths):,} readings in all are too many for one "
            "global model (the batches index them with 32-bit integers); fit the series in "
            "groups of fewer than 2**31 readings"
        )
    train, validation = [], []
    for start, one, tail in zip(first, values, tails, strict=True):
        fit_end = len(one) - tail
        train.append((start + np.arange(fit_end - window - horizon + 1),))
        if tail:
            validation.append((start + fit_end - window + np.arange(tail - horizon + 1),))
    laid, val, state, trim, streams = _arranged(
        train, validation or None, stateful=stateful, batch_size=batch_size, grow=grow
    )
    data = _read_only(np.concatenate(values))

    def windows(starts: np.ndarray) -> tuple[Any, Any]:
        starts = _read_only(starts.astype(np.int32))
        return (
            WindowBatches(values=data, starts=starts, offset=0, length=window),
            WindowBatches(values=data, starts=starts, offset=window, length=horizon, flat=True),
        )

    x_batches, y_batches = windows(laid[0])  # inputs and targets share values and starts
    return TrainingBatches(
        x_batches=x_batches,
        y_batches=y_batches,
        validation=None if val is None else windows(val[0]),
        validation_state=state,
        batch_size=laid[0].shape[1],
        streams=streams,
        trim=trim,
    )


def _arranged(
    train: list[tuple[np.ndarray, ...]],
    validation: list[tuple[np.ndarray, ...]] | None,
    *,
    stateful: bool,
    batch_size: int,
    grow: bool,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None, str, TrimReport, int | None]:
    """The policy of ``make_training_batches`` on each series' arrays of samples (a tuple).

    Returns ``(train batches, validation batches or None, validation_state, trim,
    streams)``, the batches a tuple laid out like the samples' tuple.
    """
    if stateful:
        return _arranged_streams(train, validation, batch_size, grow)
    pooled = tuple(np.concatenate(arrays) for arrays in zip(*train, strict=True))
    count = len(pooled[0])
    size = min(grown_batch_size(batch_size, count) if grow else batch_size, count)
    val = None
    if validation is not None:
        val_pooled = tuple(np.concatenate(arrays) for arrays in zip(*validation, strict=True))
        size = min(size, len(val_pooled[0]))  # the driver needs one batch size
        # the oldest left-overs dropped, as make_sample_batches(trim="start")
        val = tuple(_as_sample_batches(a, size, len(a) % size) for a in val_pooled)
    start = count % size
    trim = _one_series_trim(
        count, count - start, start, batch_size=size, num_batches=count // size, layout="official"
    )
    laid = tuple(_as_sample_batches(a, size, start) for a in pooled)
    return laid, val, "zeros", trim, None


def _arranged_streams(
    train: list[tuple[np.ndarray, ...]],
    validation: list[tuple[np.ndarray, ...]] | None,
    batch_size: int,
    grow: bool,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None, str, TrimReport, int]:
    """``_arranged`` of a stateful model: Keras' stateful layout of each series."""
    count = min(len(parts[0]) for parts in train)
    streams = min(grown_batch_size(batch_size, count) if grow else batch_size, count)
    if validation is not None:
        val_count = min(len(parts[0]) for parts in validation)
        streams = max(1, min(streams, val_count))

    def lay_out(parts: list[tuple[np.ndarray, ...]], keep: int) -> tuple[np.ndarray, ...]:
        # each series' newest `keep` samples, the oldest left-overs dropped (trim="start"),
        # as streams; the series' rows side by side: (batches, series * streams, ...)
        newest = [[a[len(a) - keep :] for a in arrays] for arrays in zip(*parts, strict=True)]
        return tuple(
            np.concatenate([_as_streams(a, streams, keep % streams) for a in arrays], axis=1)
            for arrays in newest
        )

    laid = lay_out(train, count)
    per_stream = count // streams
    # every series' samples are counted: those older than the shortest series' as trimmed
    per_series = tuple((len(parts[0]) - streams * per_stream, 0) for parts in train)
    trim = TrimReport(
        total=sum(len(parts[0]) for parts in train),
        used=len(train) * streams * per_stream,
        trimmed_start=sum(start for start, _ in per_series),
        trimmed_end=0,
        batch_size=laid[0].shape[1],
        num_batches=laid[0].shape[0],
        per_series=per_series,
    )
    val, state = None, "zeros"
    if validation is not None:
        val, state = lay_out(validation, val_count), "carry" if streams == 1 else "zeros"
    return laid, val, state, trim, streams
