"""Convolution layers built from checkpoint values, with optional fake quantization.

Every layer reads its variables by their checkpoint names through a
`VariableSource`, folds batch norm into the weights, and (for quantized
models) fake-quantizes the folded weights and the activation with the ranges
stored beside them. `LayerBuilder` is the only way the architecture modules
reach TensorFlow (see `architecture`).
"""

from typing import Literal, Optional, Protocol, Sequence

import numpy as np
import tensorflow as tf

from ssd_tflite import quantization

# Activations by their pipeline.config names (Hyperparams.activation); None is linear.
Activation = Optional[Literal["RELU", "RELU_6"]]
_ACTIVATIONS = {"RELU": tf.nn.relu, "RELU_6": tf.nn.relu6}


class VariableSource(Protocol):
    """Where layer values come from: a real checkpoint or synthesized values."""

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The float32 value of variable `name`, which must have `shape`."""

    def weights_range(self, scope: str, folded_weights: np.ndarray) -> tuple[float, float]:
        """min/max of `<scope>/weights_quant`."""

    def activation_range(self, scope: str, activation: tf.Tensor) -> Optional[tuple[float, float]]:
        """min/max of `scope` (an act_quant or post_activation_bypass_quant scope), or None."""


class LayerBuilder:
    """Builds inference-mode layers of an SSD graph from a `VariableSource`."""

    def __init__(self, source: VariableSource, quantized: bool, batch_norm_epsilon: float):
        self.source = source
        self.quantized = quantized
        self.batch_norm_epsilon = batch_norm_epsilon

    def conv(self, inputs: tf.Tensor, scope: str, filters: int = 0, kernel: int = 1, stride: int = 1, *,
             depthwise: bool = False, batch_norm: Optional[str] = "BatchNorm",
             activation: Activation = "RELU_6", quant_scope: Optional[str] = None,
             explicit_padding: bool = False) -> tf.Tensor:
        """Convolution (+ folded batch norm or biases) (+ activation) (+ fake quant).

        Args:
          inputs: NHWC input with static shape.
          scope: variable scope of the layer in the checkpoint.
          filters: output channels (ignored for depthwise layers).
          kernel, stride: square kernel size and stride.
          depthwise: depthwise convolution with `depthwise_weights` [k, k, C, 1].
          batch_norm: batch-norm scope relative to `scope`, or None for a layer
            with `biases` and no batch norm.
          activation: applied after batch norm or biases.
          quant_scope: scope of the quantization variables when it differs
            from `scope` (the doubled scopes of some backbones).
          explicit_padding: pad (k-1) split evenly, then VALID, as ResNet's
            strided `conv2d_same` does; otherwise SAME padding.
        """
        channels = int(inputs.shape[-1])
        quant_scope = quant_scope or scope
        if depthwise:
            weights = self.source.tensor(f"{scope}/depthwise_weights", (kernel, kernel, channels, 1))
            out_channels = channels
        else:
            weights = self.source.tensor(f"{scope}/weights", (kernel, kernel, channels, filters))
            out_channels = filters
        if batch_norm:
            norm = f"{scope}/{batch_norm}"
            weights, bias = quantization.fold_batch_norm(
                weights,
                *(self.source.tensor(f"{norm}/{name}", (out_channels,))
                  for name in ("gamma", "beta", "moving_mean", "moving_variance")),
                epsilon=self.batch_norm_epsilon, depthwise=depthwise)
        else:
            bias = self.source.tensor(f"{scope}/biases", (out_channels,))
        with tf.compat.v1.name_scope(quant_scope + "/"):
            kernel_tensor = tf.constant(weights, name="folded_weights" if batch_norm else "weights")
            if self.quantized:
                minimum, maximum = self.source.weights_range(quant_scope, weights)
                kernel_tensor = quantization.fake_quant(kernel_tensor, minimum, maximum, narrow_range=True,
                                                        name="weights_quant")
            padding = "SAME"
            if explicit_padding and kernel > 1:
                before = (kernel - 1) // 2
                after = kernel - 1 - before
                inputs = tf.pad(inputs, [[0, 0], [before, after], [before, after], [0, 0]], name="Pad")
                padding = "VALID"
            strides = [1, stride, stride, 1]
            if depthwise:
                outputs = tf.nn.depthwise_conv2d(inputs, kernel_tensor, strides, padding, name="depthwise")
            else:
                outputs = tf.nn.conv2d(inputs, kernel_tensor, strides, padding, name="Conv2D")
            outputs = tf.nn.bias_add(outputs, tf.constant(bias, name="bias"), name="BiasAdd")
            if activation is not None:
                outputs = _ACTIVATIONS[activation](outputs)
        return self.activation_quant(outputs, f"{quant_scope}/act_quant")

    def activation_quant(self, tensor: tf.Tensor, scope: str) -> tf.Tensor:
        """Fake-quantizes an activation with the range stored under `scope` (quantized models)."""
        if not self.quantized:
            return tensor
        value_range = self.source.activation_range(scope, tensor)
        if value_range is None:
            return tensor
        return quantization.fake_quant(tensor, *value_range, narrow_range=False, name=scope)

    def residual(self, shortcut: tf.Tensor, residual: tf.Tensor, scope: str,
                 activation: Activation = None) -> tf.Tensor:
        """shortcut + residual (+ activation), fake-quantized as `<scope>/post_activation_bypass_quant`."""
        with tf.compat.v1.name_scope(scope + "/"):
            outputs = tf.add(shortcut, residual, name="add")
            if activation is not None:
                outputs = _ACTIVATIONS[activation](outputs)
        return self.activation_quant(outputs, f"{scope}/post_activation_bypass_quant")

    def add(self, first: tf.Tensor, second: tf.Tensor, name: str) -> tf.Tensor:
        """first + second, fake-quantized as `<name>/act_quant`."""
        return self.activation_quant(tf.add(first, second, name=name), f"{name}/act_quant")

    @staticmethod
    def max_pool(inputs: tf.Tensor, kernel: int, stride: int, name: str) -> tf.Tensor:
        """Max pooling with SAME padding; it keeps its input's range, so it has no FakeQuant."""
        return tf.nn.max_pool2d(inputs, kernel, stride, "SAME", name=name)

    @staticmethod
    def upsample(inputs: tf.Tensor, size: Sequence[int], name: str) -> tf.Tensor:
        """Nearest-neighbour resize to `size` (height, width), corners not aligned."""
        return tf.raw_ops.ResizeNearestNeighbor(images=inputs, size=list(size), align_corners=False,
                                                half_pixel_centers=False, name=name)
