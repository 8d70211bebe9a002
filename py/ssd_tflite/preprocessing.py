"""What the exported graph's input expects, and how the export can embed each extractor's own normalization.

Each architecture declares its preprocessing (`Architecture.input_normalization`)
as an affine map per channel of 0..255 pixels: MobileNets use
(2 / 255) * pixel - 1, ResNet50 uses pixel - channel mean. The classic export
leaves it out: its graph input *is* the preprocessed image, and TOCO's
mean/std (128/128) approximate the MobileNet map. With
`embed_input_normalization` the graph instead takes (pixel - 128) / 128 for
every extractor and applies the exact map itself, so one mean/std (and a
uint8 input of plain pixels) fits every model, ResNet50 FPN included.
"""

import numpy as np

from ssd_tflite import architectures
from ssd_tflite.architecture import TOCO_INPUT, PixelNormalization

EMBEDDED_INPUT = TOCO_INPUT


def graph_input(feature_extractor: str, embedded: bool) -> PixelNormalization:
    """The normalization the exported graph's input expects."""
    return EMBEDDED_INPUT if embedded else architectures.BY_TYPE[feature_extractor].input_normalization


def embedding_affine(feature_extractor: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, offset) mapping (pixel - 128) / 128 to the extractor's own input."""
    target = architectures.BY_TYPE[feature_extractor].input_normalization
    mean, std = np.array(target.mean, np.float64), np.array(target.std, np.float64)
    embedded_mean, embedded_std = np.array(EMBEDDED_INPUT.mean, np.float64), np.array(EMBEDDED_INPUT.std, np.float64)
    # pixel = 128 u + 128, so (pixel - mean) / std = (128 / std) u + (128 - mean) / std.
    return (embedded_std / std).astype(np.float32), ((embedded_mean - mean) / std).astype(np.float32)
