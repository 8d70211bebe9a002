"""Synthetic checkpoints with the exact variable layout a config describes.

The real zoo tarballs cannot be downloaded everywhere (CI, air-gapped
machines), so tests and the embedded default build checkpoints whose
variable names and shapes are the ones the export reads for a config, filled
with seeded random values. Quantization ranges are what training would have
learned: weight ranges from the folded weights, activation ranges from
running the float graph on calibration images.
"""

import zlib

import numpy as np
import tensorflow as tf

from ssd_tflite import calibration, export
from ssd_tflite.checkpoint import MOVING_AVERAGE_SUFFIX, TRAINABLE_KINDS
from ssd_tflite.model_spec import ModelSpec

CALIBRATION_IMAGES = 4


def _initial_value(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind = name.rsplit("/", 1)[-1]
    if kind in ("weights", "depthwise_weights"):
        fan_in = int(np.prod(shape[:-1])) if kind == "weights" else int(np.prod(shape[:2]))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if kind == "gamma":
        # Small scales on the last layer of residual branches keep deep nets stable.
        return rng.uniform(0.1, 0.3, shape) if name.endswith("conv3/BatchNorm/gamma") else rng.uniform(0.5, 1.0, shape)
    if kind == "moving_variance":
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0.0, 0.1, shape)


class SyntheticSource:
    """Invents seeded variable values (the `tensor` part of a `layers.VariableSource`) and keeps them."""

    def __init__(self, seed: int):
        self.seed = seed
        self.values: dict[str, np.ndarray] = {}

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.values:
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            self.values[name] = _initial_value(name, shape, rng).astype(np.float32)
        return self.values[name]


def calibration_images(spec: ModelSpec, seed: int, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Smooth random images in [-1, 1], the range of the graph input."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1.0, 1.0, (count, spec.height // 20 + 1, spec.width // 20 + 1, 3))
    images = coarse.repeat(20, axis=1).repeat(20, axis=2)[:, :spec.height, :spec.width]
    return (0.8 * images + 0.2 * rng.uniform(-1.0, 1.0, images.shape)).astype(np.float32)


def checkpoint_values(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Every variable a checkpoint for `spec` holds, by checkpoint name."""
    source = SyntheticSource(seed)
    recorder = calibration.RangeRecorder(source)
    graph = tf.Graph()
    export.build_graph(spec, recorder, postprocessing=None, graph=graph)
    values = dict(source.values)
    ranges = {f"{scope}/weights_quant": value_range for scope, value_range in recorder.weight_ranges.items()}
    ranges.update(recorder.measure(graph, calibration_images(spec, seed)))
    for scope, (minimum, maximum) in ranges.items():
        values[f"{scope}/min"], values[f"{scope}/max"] = np.float32(minimum), np.float32(maximum)
    if spec.use_moving_averages:
        # Shadows hold the values to export; the raw variables are left a bit off.
        rng = np.random.default_rng(seed)
        for name in [name for name in values if name.rsplit("/", 1)[-1] in TRAINABLE_KINDS]:
            values[name + MOVING_AVERAGE_SUFFIX] = values[name]
            values[name] = (values[name] + rng.normal(0.0, 0.01, values[name].shape)).astype(np.float32)
    values["global_step"] = np.int64(200000)
    return values
