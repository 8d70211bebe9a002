"""Activation ranges measured on images, for uint8 builds of float checkpoints.

A float checkpoint holds no FakeQuant ranges, so a QUANTIZED_UINT8 conversion
of it would have to use default ranges for every tensor. Calibration measures
them instead. The graph is built once with fake-quantized weights but float
activations, while a `RangeRecorder` notes each activation a
quantization-aware graph fake-quantizes (the `act_quant` and
`post_activation_bypass_quant` points of `layers.LayerBuilder`). Images are
run through it, and the graph is built again from a `CalibratedSource` that
returns the measured min/max, with the folded weights' own min/max as weight
ranges. The converter then quantizes it like a quantization-aware model.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from ssd_tflite.architecture import PixelNormalization
from ssd_tflite.images import load_image, normalized_pixels
from ssd_tflite.layers import VariableSource
from ssd_tflite.tflite_graph import INPUT_NAME

Range = tuple[float, float]


def including_zero(minimum: float, maximum: float) -> Range:
    """The range widened to contain 0, as fake quantization requires."""
    return min(float(minimum), 0.0), max(float(maximum), 0.0)


class RangeRecorder:
    """A `VariableSource` wrapper that builds the float graph and records where ranges go."""

    def __init__(self, source: VariableSource):
        self.source = source
        # Several tensors share a scope where layers share weights (weight-shared box predictors).
        self.activations: dict[str, list[tf.Tensor]] = {}
        # Per scope, the range over every layer using it: what a checkpoint's weights_quant holds.
        self.weight_ranges: dict[str, Range] = {}

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self.source.tensor(name, shape)

    def weights_range(self, scope: str, folded_weights: np.ndarray) -> Range:
        seen = self.weight_ranges.get(scope, (0.0, 0.0))
        self.weight_ranges[scope] = (min(seen[0], float(folded_weights.min())),
                                     max(seen[1], float(folded_weights.max())))
        return including_zero(folded_weights.min(), folded_weights.max())

    def activation_range(self, scope: str, activation: tf.Tensor) -> Optional[Range]:
        self.activations.setdefault(scope, []).append(activation)
        return None  # no activation FakeQuant yet: measured first

    def measure(self, graph: tf.Graph, images: np.ndarray) -> dict[str, Range]:
        """min/max over `images` (graph inputs [N, H, W, 3]) of every recorded activation, by scope."""
        with graph.as_default():
            # Reduced in the graph: only two scalars per scope leave the session, not the activations.
            extremes = {scope: (tf.reduce_min([tf.reduce_min(tensor) for tensor in tensors]),
                                tf.reduce_max([tf.reduce_max(tensor) for tensor in tensors]))
                        for scope, tensors in self.activations.items()}
        lows = {scope: np.inf for scope in extremes}
        highs = {scope: -np.inf for scope in extremes}
        # Without Grappler, whose constant folding copies every weight (ResNet50 FPN: 2.2 GB more, not 1.1).
        config = tf.compat.v1.ConfigProto()
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            for image in images:
                for scope, (low, high) in session.run(extremes, {f"{INPUT_NAME}:0": image[np.newaxis]}).items():
                    lows[scope], highs[scope] = min(lows[scope], low), max(highs[scope], high)
        return {scope: including_zero(lows[scope], highs[scope]) for scope in extremes}


class CalibratedSource:
    """A `VariableSource` wrapper that supplies measured activation ranges."""

    def __init__(self, source: VariableSource, activation_ranges: dict[str, Range]):
        self.source = source
        self.activation_ranges = activation_ranges

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self.source.tensor(name, shape)

    def weights_range(self, scope: str, folded_weights: np.ndarray) -> Range:
        return including_zero(folded_weights.min(), folded_weights.max())

    def activation_range(self, scope: str, activation: tf.Tensor) -> Optional[Range]:
        return self.activation_ranges[scope]


def load_images(paths: Sequence[str], height: int, width: int, normalization: PixelNormalization) -> np.ndarray:
    """Images resized to the graph input and normalized as the graph expects, [N, H, W, 3] float32."""
    return np.stack([normalized_pixels(load_image(path), height, width, normalization.mean,
                                                 normalization.std) for path in paths])
