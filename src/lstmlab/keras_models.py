"""Keras-like edge objects: ``LSTMModel`` and ``MLPModel``.

They hold parameters, optimizer state and recurrent state, and call the functional core for
everything numeric. State changes by rebinding (``self._state = new_state``), never in place.
"""

import copy
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lstmlab.checks import as_float_array, check_choice
from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    ModelState,
    apply,
    from_keras_weights,
    init_params,
    init_state,
    reset_state,
    to_keras_weights,
)
from lstmlab.core.train import (
    History,
    KerasAdamState,
    TrainConfig,
    TrainState,
    compile_fit,
    compiled_evaluate,
    compiled_predict,
    fit_single,
)
from lstmlab.data.layouts import check_trim, make_sample_batches, make_stream_batches
from lstmlab.live.state_store import SeriesStore
from lstmlab.model_folder import (
    ModelFolderError,
    SavedModel,
    flatten_params,
    load_model,
    save_model,
    unflatten_params,
)
from lstmlab.runtime import ensure_compile_cache, epoch_progress, in_background

__all__ = ["LSTMModel", "MLPModel"]

# The series id under which a model folder's state store keeps the edge object's own state.
_STATE_ROW = "model"
_FORMAT = 1

_LAYOUTS = ("official", "streams")


@jax.jit(static_argnums=0)
def _apply_stateless(config: ModelConfig, params, x):
    state = init_state(config, x.shape[0])
    return apply(config, params, state, x)[0]


class _Model:
    """Shared edge behaviour; subclasses only build their config."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        batch_size: int,
        seed: int,
        learning_rate: float,
        params: Any = None,
    ) -> None:
        self._config = config
        self._batch_size = batch_size
        self._seed = seed
        self._learning_rate = learning_rate
        ensure_compile_cache()  # before the first program: init_params compiles one
        # The initial parameters are made on a thread (their program compiles there, about a
        # second the first time on a machine): the first fit compiles the training program
        # meanwhile (see fit).
        self._initial = None if params is not None else in_background(init_params, config, seed)
        self._weights = params
        self._state: ModelState = init_state(config, batch_size)
        self._opt_state: Any = None  # created by the first fit, kept across fits as Keras does
        self._step = 0
        self._fits = 0

    # -- read-only views ----------------------------------------------------------------
    @property
    def config(self) -> ModelConfig:
        """The frozen model description."""
        return self._config

    @property
    def batch_size(self) -> int:
        """Rows per batch; a stateful model only takes batches of this size."""
        return self._batch_size

    @property
    def params(self):
        """The parameter pytree."""
        return self._params

    @property
    def _params(self):
        if self._initial is not None:
            self._weights, self._initial = self._initial.result(), None
        return self._weights

    @_params.setter
    def _params(self, params) -> None:
        self._initial, self._weights = None, params

    @property
    def state(self) -> ModelState:
        """The recurrent state, one ``LSTMState`` per layer (``()`` for an MLP)."""
        return self._state

    @property
    def stateful(self) -> bool:
        """Whether the state is carried across batches and calls."""
        return self._config.stateful

    # -- checks ----------------------------------------------------------------------------
    def _check_x(self, x: Any, name: str = "x") -> np.ndarray:
        x = as_float_array(name, x, ndim=3)
        samples, time_steps, features = x.shape
        if samples == 0 or time_steps == 0:
            raise ValueError(
                f"{name} has shape {x.shape}, with no samples or no time steps; pass at least "
                "one sample of at least one time step"
            )
        if features != self._config.features:
            raise ValueError(
                f"{name} has {features} features per step, the model expects "
                f"{self._config.features}; pass {name} of shape (samples, time, "
                f"{self._config.features})"
            )
        if self._config.kind == "mlp" and time_steps != self._config.timesteps:
            raise ValueError(
                f"{name} has {time_steps} time steps, the MLP expects {self._config.timesteps}; "
                f"pass windows of {self._config.timesteps} steps"
            )
        return x

    def _check_y(self, y: Any, x: np.ndarray, name: str = "y") -> np.ndarray:
        sequences = getattr(self._config, "return_sequences", False)
        expected = (len(x), x.shape[1], self._config.outputs) if sequences else (
            len(x), self._config.outputs)
        if np.shape(y) != expected:
            raise ValueError(
                f"{name} has shape {np.shape(y)}, expected {expected} to match x {x.shape} and "
                f"outputs={self._config.outputs}; reshape the targets to {expected}"
            )
        return as_float_array(name, y, ndim=len(expected))

    def _check_stateful_batch(self, batch_size: int | None) -> int:
        if batch_size is None or batch_size == self._batch_size:
            return self._batch_size
        if self.stateful:
            raise ValueError(
                f"this stateful model was built for batch_size={self._batch_size}, got "
                f"batch_size={batch_size}; use model.with_batch_size({batch_size}) to get the "
                "same weights at another batch size"
            )
        return batch_size

    def _batches(self, x, y, batch_size: int, layout: str, trim: str, name: str = "x"):
        check_choice("layout", layout, _LAYOUTS)
        check_trim(trim)
        remainder = len(x) % batch_size
        if remainder and trim == "error" and len(x) >= batch_size:
            # Named here, with the data's name (validation x): the layouts' own messages
            # speak of x.
            raise ValueError(
                f"{name} holds {len(x)} samples, not a multiple of batch_size={batch_size} "
                f"(remainder {remainder}); pass trim='start' to drop the oldest {remainder} "
                f"samples or trim='end' to drop the newest {remainder}, or choose a batch_size "
                f"that divides {len(x)}"
            )
        if layout == "streams":
            return make_stream_batches(x, y, batch_size=batch_size, trim=trim)
        return make_sample_batches(x, y, batch_size=batch_size, trim=trim)

    # -- training and inference ------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any,
        *,
        epochs: int = 1,
        batch_size: int | None = None,
        shuffle: bool = False,
        validation_data: tuple[Any, Any] | None = None,
        reset: str | int = "epoch",
        layout: str = "official",
        trim: str = "error",
        quiet: bool = False,
    ) -> History:
        """Train on samples in time order; returns the per-epoch history.

        Args:
            x: ``(samples, time, features)``.
            y: ``(samples, outputs)`` (``(samples, time, outputs)`` with ``return_sequences``).
            epochs: passes over the data.
            batch_size: rows per batch; a stateful model only accepts its own.
            shuffle: shuffle samples every epoch (stateless models only).
            validation_data: optional ``(x_val, y_val)``, evaluated after every epoch in the
                same layout. A stateful model validates from the state the epoch ended in
                with the official layout (row ``i`` continues), from zero state with the
                stream layout (validation stream ``i`` does not continue training stream
                ``i``); either way the training state is left as it was.
            reset: stateful reset policy: ``"epoch"``, ``"never"`` or every N batches.
            layout: ``"official"`` (Keras' order: batch k holds samples k*B..k*B+B-1) or
                ``"streams"`` (B contiguous streams; row i of batch k+1 continues row i of
                batch k).
            trim: what to do with the samples that do not fill a batch, in ``x`` and in the
                validation data: ``"error"`` refuses them (naming the fix), ``"start"`` drops
                the oldest, ``"end"`` the newest (``lstmlab.data.layouts.check_trim``).
            quiet: no progress bar.

        Returns:
            ``History`` with per-epoch ``loss`` and ``val_loss``, and in ``trim`` and
            ``val_trim`` what the layout used and left out of ``x`` and the validation data.

        Raises:
            ValueError: shuffling a stateful model, a foreign batch size for a stateful model,
                a sample count that is not a multiple of the batch size with
                ``trim="error"``, an unknown ``trim``, NaN or infinite values, or shapes that
                do not match the model.
        """
        batch_size = self._check_stateful_batch(batch_size)
        train_config = TrainConfig(
            epochs=epochs,
            learning_rate=self._learning_rate,
            shuffle=shuffle,
            reset=reset,
            seed=self._seed + self._fits,
        )
        if self.stateful and shuffle:
            raise ValueError(
                "stateful training needs shuffle=False, got shuffle=True; pass shuffle=False "
                "(shuffling would break the continuity of each stream across batches)"
            )
        x = self._check_x(x)
        y = self._check_y(y, x)
        train = self._batches(x, y, batch_size, layout, trim)
        validation = None
        if validation_data is not None:
            x_val = self._check_x(validation_data[0], "validation x")
            y_val = self._check_y(validation_data[1], x_val, "validation y")
            val = self._batches(x_val, y_val, batch_size, layout, trim, name="validation x")
            validation = (val.x_batches, val.y_batches)
        # fit_single makes the key (from the int seed), Adam's first state and the zero state.
        train_state = TrainState(
            params=None,  # below: the initial parameters may still be in the making
            opt_state=self._opt_state,  # None before the first fit: Adam starts from zero moments
            rnn_state=self._state if self.stateful else None,  # None: zero state
            step=self._step,
            key=train_config.seed,
        )
        validation_state = "zeros" if layout == "streams" else "carry"
        if self._initial is not None and not self._initial.done():
            # Compile the training program from the parameters' shapes while their own
            # program still compiles on its thread: the two compilations overlap.
            shapes = jax.eval_shape(lambda: init_params(self._config, self._seed))
            compile_fit(
                self._config, train_config, train_state._replace(params=shapes),
                train.x_batches, train.y_batches, validation=validation,
                validation_state=validation_state, single=True,
            )
        train_state = train_state._replace(params=self._params)
        with epoch_progress(epochs, type(self).__name__, quiet=quiet) as progress:
            train_state, log = fit_single(
                self._config,
                train_config,
                train_state,
                train.x_batches,
                train.y_batches,
                validation=validation,
                # Validation stream i does not continue training stream i in the stream layout.
                validation_state=validation_state,
                on_epoch=lambda _, loss, val: progress.advance(
                    float(loss[0]), None if val is None else float(val[0])
                ),
            )
        self._params = train_state.params
        self._opt_state = train_state.opt_state
        if self.stateful:
            self._state = train_state.rnn_state
        self._step = int(train_state.step)
        self._fits += 1
        return log.history(
            0, trim=train.trim, val_trim=None if validation_data is None else val.trim
        )

    def predict(self, x: Any, *, batch_size: int | None = None, trim: str = "error") -> np.ndarray:
        """Predict in sample order.

        A stateful model runs the samples as consecutive batches of its batch size (Keras'
        order), starting from its current state and keeping the state it ends in.

        Args:
            x: ``(samples, time, features)``.
            batch_size: rows per batch; a stateful model only accepts its own.
            trim: a stateful model: what to do with the ``len(x) % batch_size`` samples that
                do not fill a batch: ``"error"`` refuses them, ``"end"`` leaves the last ones
                out, ``"start"`` the first ones (they get no prediction).

        Returns:
            ``(samples, outputs)`` as NumPy; with ``trim="end"`` (``"start"``) the
            predictions of all but the last (first) ``len(x) % batch_size`` samples.

        Raises:
            ValueError: see ``fit``.
        """
        check_trim(trim)
        x = self._check_x(x)
        if not self.stateful:
            return np.asarray(_apply_stateless(self._config, self._params, x))
        batch_size = self._check_stateful_batch(batch_size)
        batches = make_sample_batches(x, None, batch_size=batch_size, trim=trim)
        predictions, self._state = compiled_predict(self._config)(
            self._params, self._state, batches.x_batches
        )
        return np.asarray(batches.to_samples(np.asarray(predictions)))

    def evaluate(
        self, x: Any, y: Any, *, batch_size: int | None = None, trim: str = "error"
    ) -> float:
        """Mean squared error on ``(x, y)``; a stateful model carries and keeps its state.

        Args:
            x: ``(samples, time, features)``.
            y: targets matching the model's output shape.
            batch_size: rows per batch; a stateful model only accepts its own.
            trim: a stateful model: what to do with the samples that do not fill a batch
                (``"error"``, or leave out and do not score the last, ``"end"``, or the first,
                ``"start"``).

        Returns:
            The MSE as a float.

        Raises:
            ValueError: see ``fit``.
        """
        check_trim(trim)
        x = self._check_x(x)
        y = self._check_y(y, x)
        if not self.stateful:
            prediction = _apply_stateless(self._config, self._params, x)
            return float(jnp.mean(jnp.square(prediction - y)))
        batch_size = self._check_stateful_batch(batch_size)
        batches = make_sample_batches(x, y, batch_size=batch_size, trim=trim)
        losses, self._state = compiled_evaluate(self._config)(
            self._params, self._state, batches.x_batches, batches.y_batches,
        )
        return float(jnp.mean(losses))

    # -- state and weights -----------------------------------------------------------------
    def reset_states(self, layer: int | None = None) -> None:
        """Zero the recurrent state of all layers, or of one (Keras ``reset_states``)."""
        self._state = reset_state(self._state, layer)

    def get_weights(self) -> list[np.ndarray]:
        """Weights in the order and shapes of Keras' ``model.get_weights()``."""
        return to_keras_weights(self._config, self._params)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Load weights given in Keras' ``get_weights()`` order; checks count and shapes.

        The optimizer starts afresh: the next ``fit`` begins with zero Adam moments and
        ``History.updates`` counts from zero again.
        """
        self._params = from_keras_weights(self._config, list(weights), self._params)
        self._opt_state = None
        self._step = 0

    # -- saving ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the model into a model folder (``lstmlab.model_folder``), atomically.

        The folder holds the config, the weights, the batch size, seed and learning rate, and
        in its state store the carried recurrent state and Adam's state, so that a loaded
        model predicts, and trains on, exactly as this one would.

        Args:
            path: the model folder; created if needed, an existing model in it replaced.

        Raises:
            ModelFolderError: the folder holds files that are not an lstmlab model's.
        """
        arrays = {}
        for layer, state in enumerate(self._state):
            arrays[f"state.{layer}.h"] = np.asarray(state.h)
            arrays[f"state.{layer}.c"] = np.asarray(state.c)
        if self._opt_state is not None:
            arrays["optimizer.count"] = np.asarray(self._opt_state.count)
            for name, tree in (("mu", self._opt_state.mu), ("nu", self._opt_state.nu)):
                for key, array in flatten_params(tree).items():
                    arrays[f"optimizer.{name}.{key}"] = array
        recipe = {
            "keras_model": type(self).__name__,
            "keras_model_format": _FORMAT,
            "batch_size": self._batch_size,
            "seed": self._seed,
            "learning_rate": self._learning_rate,
            "step": self._step,
            "fits": self._fits,
        }
        save_model(
            path,
            SavedModel(
                config=self._config,
                params=self._params,
                recipe=recipe,
                # one row: the edge object's state, stacked as a store of one series
                states={name: array[None] for name, array in arrays.items()},
                states_meta={"series": [_STATE_ROW]},
            ),
            opener=SeriesStore,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "_Model":
        """Load a model saved by ``save``; the class saved is the class returned.

        Args:
            path: the model folder.

        Returns:
            An ``LSTMModel`` or ``MLPModel`` with the saved weights, batch size, carried
            state and optimizer state.

        Raises:
            ModelFolderError: no model folder, a damaged one (checksums are verified), one
                that holds another kind of model (a ``Forecaster``'s), or an ``MLPModel``
                loaded through ``LSTMModel.load`` (or the reverse).
        """
        saved = load_model(path, states=SeriesStore)
        recipe = saved.recipe
        name = recipe.get("keras_model")
        classes = {klass.__name__: klass for klass in (LSTMModel, MLPModel)}
        if name not in classes:
            raise ModelFolderError(
                f"{path} holds no LSTMModel or MLPModel (its recipe names {name!r}); load a "
                "Forecaster's folder with lstmlab.Forecaster.load"
            )
        klass = classes[name]
        if not issubclass(klass, cls):
            raise ModelFolderError(
                f"{path} holds an {name}, not an {cls.__name__}; load it with {name}.load"
            )
        model = klass.__new__(klass)
        _Model.__init__(
            model,
            saved.config,
            batch_size=recipe["batch_size"],
            seed=recipe["seed"],
            learning_rate=recipe["learning_rate"],
            params=saved.params,
        )
        row = saved.states_meta["series"].index(_STATE_ROW)
        arrays = {key: value[row] for key, value in saved.states.items()}
        state = []
        for layer, zero in enumerate(model._state):
            h, c = (arrays.get(f"state.{layer}.{part}") for part in ("h", "c"))
            if h is None or c is None or h.shape != zero.h.shape or c.shape != zero.c.shape:
                raise ModelFolderError(
                    f"the state of layer {layer} in {path} is missing or does not have the "
                    f"shape {zero.h.shape} of batch_size x units; save the model again"
                )
            state.append(LSTMState(h=jax.device_put(h), c=jax.device_put(c)))
        model._state = tuple(state)
        if "optimizer.count" in arrays:
            moments = {}
            for moment in ("mu", "nu"):
                prefix = f"optimizer.{moment}."
                flat = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                moments[moment] = unflatten_params(saved.config, flat)
            model._opt_state = KerasAdamState(
                count=jax.device_put(arrays["optimizer.count"]), **moments
            )
        model._step = int(recipe["step"])
        model._fits = int(recipe["fits"])
        return model

    def _copy_with(self, batch_size: int) -> "_Model":
        clone = copy.copy(self)  # shares the immutable arrays; rebinding keeps them apart
        clone._batch_size = batch_size
        clone._state = init_state(self._config, batch_size)
        return clone

    def with_batch_size(self, batch_size: int) -> "_Model":
        """A model with the same weights (and optimizer state) at another batch size.

        The new model starts from zero state; e.g. ``model.with_batch_size(1)`` predicts one
        sample at a time after training at batch size 32.
        """
        init_state(self._config, batch_size)  # validates batch_size
        return self._copy_with(batch_size)


class LSTMModel(_Model):
    """A stack of LSTM layers and a Dense head, used like a Keras ``Sequential`` model.

    Example:
        >>> import numpy as np
        >>> from lstmlab import LSTMModel
        >>> model = LSTMModel(units=(20,), stateful=True, batch_size=1, seed=0)
        >>> x = np.random.default_rng(0).uniform(-0.1, 0.1, (64, 1, 1))
        >>> history = model.fit(x, x[:, 0], epochs=2, quiet=True)
        >>> len(history.loss), model.predict(x[:4]).shape
        (2, (4, 1))
    """

    def __init__(
        self,
        units: Sequence[int] | int = (20,),
        *,
        stateful: bool = True,
        batch_size: int = 1,
        timesteps: int = 1,
        features: int = 1,
        outputs: int = 1,
        return_sequences: bool = False,
        seed: int = 0,
        learning_rate: float = 1e-3,
    ) -> None:
        """Build the model with Keras' default initialisation.

        Args:
            units: hidden units per LSTM layer.
            stateful: carry state across batches and calls.
            batch_size: rows per batch (the state's size).
            timesteps: time steps per training sample.
            features: inputs per step.
            outputs: Dense head outputs.
            return_sequences: predict at every step, ``(samples, time, outputs)``.
            seed: initialisation seed.
            learning_rate: Adam step size.
        """
        config = LSTMConfig(
            units=units,
            timesteps=timesteps,
            features=features,
            outputs=outputs,
            stateful=stateful,
            return_sequences=return_sequences,
        )
        super().__init__(config, batch_size=batch_size, seed=seed, learning_rate=learning_rate)


class MLPModel(_Model):
    """A plain multilayer network on a flattened window (no recurrent state).

    Example:
        >>> import numpy as np
        >>> from lstmlab import MLPModel
        >>> model = MLPModel(hidden=(8,), timesteps=3, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(30, 3, 1))
        >>> model.fit(x, x[:, -1], epochs=3, batch_size=10, quiet=True).updates
        9
    """

    def __init__(
        self,
        hidden: Sequence[int] | int = (32,),
        *,
        timesteps: int = 1,
        features: int = 1,
        outputs: int = 1,
        batch_size: int = 1,
        seed: int = 0,
        learning_rate: float = 1e-3,
    ) -> None:
        """Build the model with Keras' default initialisation.

        Args:
            hidden: units per hidden ReLU layer.
            timesteps: window length.
            features: inputs per step.
            outputs: outputs of the final linear layer.
            batch_size: default rows per training batch.
            seed: initialisation seed.
            learning_rate: Adam step size.
        """
        config = MLPConfig(hidden=hidden, timesteps=timesteps, features=features, outputs=outputs)
        super().__init__(config, batch_size=batch_size, seed=seed, learning_rate=learning_rate)
