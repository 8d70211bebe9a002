"""Batch-norm folding and fake quantization, as quantization-aware SSD graphs do them.

Weights are folded with their batch norm before they are fake-quantized
(narrow range), activations are fake-quantized after the activation function
(full range), both with 8 bits and the per-tensor min/max the checkpoint
learned. The converter reads these ranges to build the uint8 model.
"""

import numpy as np
import tensorflow as tf

NUM_BITS = 8
UINT8_STEPS = 2 ** NUM_BITS - 1  # a full-range uint8 tensor spans 255 steps; a narrow-range one 254


def nudged_zero_point(minimum: float, scale: float, first_level: int = 0) -> int:
    """The zero point a range [minimum, ...] of `scale` gets, rounded and clamped as FakeQuant nudges it."""
    return int(np.clip(np.floor(first_level - np.float64(minimum) / scale + 0.5), first_level, UINT8_STEPS))


def fold_batch_norm(weights: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                    variance: np.ndarray, epsilon: float, depthwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Folds inference-mode batch norm into convolution weights and a bias.

    y = gamma * (conv(x, w) - mean) / sqrt(variance + epsilon) + beta
      = conv(x, w * s) + (beta - mean * s),  with s = gamma / sqrt(variance + epsilon).
    Output channels are the last axis of regular weights [kh, kw, in, out] and
    the input-channel axis of depthwise weights [kh, kw, channels, 1].
    """
    scale = gamma / np.sqrt(variance + np.float32(epsilon))
    if depthwise:
        folded = weights * scale.reshape(1, 1, -1, 1)
    else:
        folded = weights * scale
    return folded.astype(np.float32), (beta - mean * scale).astype(np.float32)


def fake_quant(tensor: tf.Tensor, minimum: float, maximum: float, narrow_range: bool,
               name: str) -> tf.Tensor:
    """FakeQuantWithMinMaxVars with constant range, as the converter expects it."""
    with tf.compat.v1.name_scope(name):
        return tf.quantization.fake_quant_with_min_max_vars(
            tensor,
            tf.constant(minimum, tf.float32, name="min"),
            tf.constant(maximum, tf.float32, name="max"),
            num_bits=NUM_BITS,
            narrow_range=narrow_range,
            name="FakeQuantWithMinMaxVars")
