"""Strict reading of a detection checkpoint: every model variable must be used.

Optimizer slots, `global_step`, zero-debias counters and (unless the config
asks for them) moving-average shadows are not model variables and are
skipped. Anything else the graph does not consume, anything it needs that is
missing, and any shape mismatch is reported together, with names and shapes.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from ssd_tflite.errors import CheckpointError

MOVING_AVERAGE_SUFFIX = "/ExponentialMovingAverage"
# Variables that training updates, and so the ones with moving-average shadows.
TRAINABLE_KINDS = frozenset({"weights", "depthwise_weights", "biases", "gamma", "beta"})
OPTIMIZER_SLOTS = frozenset({"Momentum", "RMSProp", "RMSProp_1", "Adam", "Adam_1", "Adagrad", "Ftrl", "Ftrl_1"})
TRAINING_STATE = frozenset({"global_step", "fake_quantization_step", "beta1_power", "beta2_power"})
ZERO_DEBIAS = frozenset({"biased", "local_step"})
_LISTED = 8
# What TensorFlow's reader raises for damaged checkpoint files (measured on truncated files, flipped bytes,
# and flipped index bytes whose block checksums were made to match). Opening the index and listing its
# variables: an OpError (no such file, a corrupt table), a TypeError (an entry with an unknown dtype), a
# ValueError (no checkpoint at the prefix; a name that is not UTF-8 is a UnicodeDecodeError). Reading a
# value: an OpError (a checksum that does not match, an entry that lost its key, a data file that cannot
# be opened) or an IndexError (a data file shorter than its index says).
_OPENING_ERRORS = (tf.errors.OpError, TypeError, ValueError)
_READING_ERRORS = (tf.errors.OpError, IndexError)


def _first_line(error: Exception) -> str:
    """The first line of a reader's error message, or the error's type if it has none."""
    return (getattr(error, "message", str(error)).splitlines() or [type(error).__name__])[0]


def _listing(items: list[str]) -> str:
    shown = "\n".join("    " + item for item in items[:_LISTED])
    more = len(items) - _LISTED
    return shown + (f"\n    ... and {more} more" if more > 0 else "")


class CheckpointSource:
    """A `layers.VariableSource` over a TF checkpoint, keeping track of what is used."""

    def __init__(self, prefix: str, use_moving_averages: bool):
        self.prefix = prefix
        self.use_moving_averages = use_moving_averages
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            self._shapes = {name: tuple(shape) for name, shape in self._reader.get_variable_to_shape_map().items()}
            self._dtypes = self._reader.get_variable_to_dtype_map()
        except _OPENING_ERRORS as error:
            raise CheckpointError(f"{prefix}: cannot read the checkpoint "
                                  f"(expected {prefix}.index and {prefix}.data-*): {_first_line(error)}") from None
        self._consumed: set[str] = set()
        self._missing: list[str] = []
        self._mismatched: list[str] = []

    def _stored_name(self, name: str) -> str:
        if self.use_moving_averages and name.rsplit("/", 1)[-1] in TRAINABLE_KINDS:
            return name + MOVING_AVERAGE_SUFFIX
        return name

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        stored = self._stored_name(name)
        if stored not in self._shapes:
            self._missing.append(f"{stored} {list(shape)}")
            return np.zeros(shape, np.float32)
        if self._shapes[stored] != shape or self._dtypes[stored] != tf.float32:
            self._mismatched.append(f"{stored}: checkpoint has {self._dtypes[stored].name} "
                                    f"{list(self._shapes[stored])}, the config needs float32 {list(shape)}")
            self._consumed.add(stored)
            return np.zeros(shape, np.float32)
        self._consumed.add(stored)
        try:
            return self._reader.get_tensor(stored)
        except _READING_ERRORS as error:
            raise CheckpointError(f"{self.prefix}: variable {stored} cannot be read: {_first_line(error)}. "
                                  "The checkpoint files are damaged: copy or download them again.") from None

    def _range(self, scope: str) -> tuple[float, float]:
        return float(self.tensor(f"{scope}/min", ())), float(self.tensor(f"{scope}/max", ()))

    def weights_range(self, scope: str, folded_weights: np.ndarray) -> tuple[float, float]:
        return self._range(f"{scope}/weights_quant")

    def activation_range(self, scope: str, activation: tf.Tensor) -> Optional[tuple[float, float]]:
        return self._range(scope)

    def _is_model_variable(self, name: str) -> bool:
        parts = name.split("/")
        if name in TRAINING_STATE or parts[-1] in OPTIMIZER_SLOTS or parts[-1] in ZERO_DEBIAS:
            return False
        if name.endswith(MOVING_AVERAGE_SUFFIX):
            return False
        # With moving averages, the raw trainable variable is replaced by its shadow.
        return not (self.use_moving_averages and parts[-1] in TRAINABLE_KINDS)

    def verify(self, model: str) -> None:
        """Raises CheckpointError unless the graph used exactly the model variables."""
        unused = sorted(name for name in self._shapes
                        if name not in self._consumed and self._is_model_variable(name))
        if not (self._missing or self._mismatched or unused):
            return
        lines = [f"{self.prefix}: the checkpoint does not match {model}:"]
        if self._missing:
            lines.append(f"  {len(self._missing)} variable(s) the config needs are missing:\n" + _listing(self._missing))
        if self._mismatched:
            lines.append(f"  {len(self._mismatched)} variable(s) have the wrong shape:\n" + _listing(self._mismatched))
            if all("ClassPredictor" in item for item in self._mismatched):
                lines.append("  Only class heads differ: was the checkpoint trained with another num_classes?")
        if unused:
            lines.append(f"  {len(unused)} checkpoint variable(s) are not used by the config:\n" + _listing(unused))
        if self._missing and unused:
            lines.append("  Is this a checkpoint of another architecture, or of the float/quantized twin?")
        if self.use_moving_averages and any(MOVING_AVERAGE_SUFFIX in item for item in self._missing):
            lines.append("  eval_config.use_moving_averages is true but moving averages are missing.")
        raise CheckpointError("\n".join(lines))
