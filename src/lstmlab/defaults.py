"""The defaults of the forecaster and of the service, importable without JAX or pandas.

``ForecasterSettings`` and ``ServeSettings`` hold the fields and the default values of
``lstmlab.forecaster.ForecasterConfig`` and ``lstmlab.live.service.ServeConfig``, which
extend them with their checks (and the forecaster's network); the limits below are the
forecaster's. The command line reads its flags' defaults from here, so that ``lstmlab fit
--help`` or ``lstmlab serve --help`` loads no numerical stack, and every default still has
one source.
"""

from dataclasses import dataclass, field

__all__ = [
    "AUTO_KINDS",
    "FORECASTER_MODELS",
    "MAX_EPOCHS",
    "MAX_HORIZON",
    "MAX_READINGS",
    "MIN_WINDOW",
    "MODEL_KINDS",
    "PLAUSIBLE_FACTOR",
    "ForecasterSettings",
    "ServeSettings",
]

MODEL_KINDS = ("stateful", "stateless", "stacked", "mlp")
# model="auto" trains these kinds (each with its normalisations) and keeps the one whose
# forecasts score best on the validation tail; the stacked model, the seeds' two-layer
# experiment, is slower to train and is chosen by name.
AUTO_KINDS = ("mlp", "stateless", "stateful")
FORECASTER_MODELS = ("auto", *MODEL_KINDS)
# The most steps one forecast may have.
MAX_HORIZON = 10_000
# The most training epochs of a model (ForecasterConfig, compare's ModelSpec, the seed-script
# experiments and every --epochs): an absurd count is refused at once instead of running for
# ever.
MAX_EPOCHS = 1_000_000
# The most readings one request may carry (ServeConfig.max_readings, Forecaster.warm_up,
# --max-readings): the warm-up compiles a read of up to this many readings.
MAX_READINGS = 1_000_000
# The shortest default window (``window=None``), the minimum of ``choose_window``.
MIN_WINDOW = 6
# A reading beyond this many training ranges outside the series' training data is refused
# (``Forecaster.check_values``). Wider than the forecast check on purpose: a refused reading
# is lost to the series, a flagged forecast only left out of a median. Ten ranges let a trend
# go on for years (the airline series, 104 to 622 passengers, accepts up to 5,802) and a
# level shift of several ranges through, yet refuse the garbage a live feed sends: a unit
# slip of a thousand, a sentinel code such as 999999, an overflow such as 1e39.
PLAUSIBLE_FACTOR = 10.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecasterSettings:
    """The fields and defaults of ``ForecasterConfig``, unchecked; see it for their meaning."""

    model: str = "auto"
    window: int | None = None
    units: tuple[int, ...] = ()
    epochs: int = 200
    learning_rate: float = 3e-3
    batch_size: int | None = None
    seeds: int = 5
    seed: int = 0
    scaler: str = "minmax"
    norm: str = "auto"
    validation: float = 0.2
    patience: int = 20
    refit: bool = True
    horizon: int = 1
    seasons: tuple[int, ...] | None = None

    @property
    def stateful(self) -> bool:
        """Whether the model carries its recurrent state along each series."""
        return self.model in ("stateful", "stacked")

    @property
    def default_units(self) -> tuple[int, ...]:
        """The units used when ``units`` is ``()``."""
        return {
            "stateful": (16,),
            "stacked": (16, 16),
            "stateless": (16,),
            "mlp": (32,),
            "auto": (32,),  # each kind tried takes its own; the widest layer, for estimates
        }[self.model]

    @property
    def default_batch_size(self) -> int:
        """The batch size used when ``batch_size`` is ``None``."""
        return 1 if self.stateful else 4

    @property
    def resolved_units(self) -> tuple[int, ...]:
        """``units``, or the model's default."""
        return self.units or self.default_units

    @property
    def resolved_batch_size(self) -> int:
        """``batch_size``, or the model's default."""
        return self.default_batch_size if self.batch_size is None else self.batch_size


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeSettings:
    """The fields and defaults of ``ServeConfig``, unchecked; see it for their meaning."""

    max_readings: int = 10_000
    max_body_bytes: int = 1_000_000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_horizon: int = 1000
    durability: str = "process"
    max_series: int | None = None
    new_series: bool = False
    plausible_factor: float | None = PLAUSIBLE_FACTOR
    store: str | None = field(default=None, repr=False)  # may hold a password
    token: str | None = field(default=None, repr=False)
