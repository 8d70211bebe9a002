"""Anchor boxes, computed once at export time and frozen into the graph.

Boxes are rows of (ycenter, xcenter, height, width) in coordinates normalized
to the image, ordered as the box predictors emit them: feature map by feature
map, then row, column and anchor within a cell.
"""

import math
from typing import Sequence

import numpy as np

from ssd_tflite.errors import InternalError
from ssd_tflite.model_spec import MultiscaleAnchors, SsdAnchors

FeatureMapShape = tuple[int, int]


def _grid(feature_map: FeatureMapShape, stride: tuple[float, float], offset: tuple[float, float],
          heights: Sequence[float], widths: Sequence[float]) -> np.ndarray:
    """Tiles per-cell anchor sizes over a feature map, row-major then by anchor."""
    rows, cols = feature_map
    y_centers = offset[0] + stride[0] * np.arange(rows, dtype=np.float64)
    x_centers = offset[1] + stride[1] * np.arange(cols, dtype=np.float64)
    y, x, h = np.meshgrid(y_centers, x_centers, np.asarray(heights, np.float64), indexing="ij")
    _, _, w = np.meshgrid(y_centers, x_centers, np.asarray(widths, np.float64), indexing="ij")
    return np.stack([y, x, h, w], axis=-1).reshape(-1, 4)


def ssd_layer_box_specs(spec: SsdAnchors) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of each anchor in a cell, per feature map (SSD paper, eq. 4)."""
    if spec.scales:
        scales = list(spec.scales)
    elif spec.num_layers == 1:
        scales = [spec.min_scale]
    else:
        scales = [spec.min_scale + (spec.max_scale - spec.min_scale) * k / (spec.num_layers - 1)
                  for k in range(spec.num_layers)]
    scales.append(1.0)
    layers = []
    for k in range(spec.num_layers):
        if k == 0 and spec.reduce_boxes_in_lowest_layer:
            layers.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            continue
        boxes = [(scales[k], ratio) for ratio in spec.aspect_ratios]
        if spec.interpolated_scale_aspect_ratio > 0:
            boxes.append((math.sqrt(scales[k] * scales[k + 1]), spec.interpolated_scale_aspect_ratio))
        layers.append(boxes)
    return layers


def ssd_anchors(spec: SsdAnchors, feature_maps: Sequence[FeatureMapShape],
                image_size: FeatureMapShape) -> np.ndarray:
    """`ssd_anchor_generator` anchors for the given feature-map sizes."""
    if len(feature_maps) != spec.num_layers:
        raise InternalError(f"ssd_anchor_generator.num_layers is {spec.num_layers} "
                            f"but the feature extractor yields {len(feature_maps)} feature maps")
    shortest = min(image_size)
    base_height = spec.base_anchor_height * shortest / image_size[0]
    base_width = spec.base_anchor_width * shortest / image_size[1]
    boxes = []
    for feature_map, box_specs in zip(feature_maps, ssd_layer_box_specs(spec)):
        stride = (1.0 / feature_map[0], 1.0 / feature_map[1])
        heights = [scale / math.sqrt(ratio) * base_height for scale, ratio in box_specs]
        widths = [scale * math.sqrt(ratio) * base_width for scale, ratio in box_specs]
        boxes.append(_grid(feature_map, stride, (stride[0] / 2, stride[1] / 2), heights, widths))
    return np.concatenate(boxes).astype(np.float32)


def multiscale_anchors(spec: MultiscaleAnchors, feature_maps: Sequence[FeatureMapShape],
                       image_size: FeatureMapShape) -> np.ndarray:
    """`multiscale_anchor_generator` (RetinaNet) anchors, one feature map per level."""
    levels = range(spec.min_level, spec.max_level + 1)
    if len(feature_maps) != len(levels):
        raise InternalError(f"multiscale_anchor_generator covers {len(levels)} levels "
                            f"but the feature extractor yields {len(feature_maps)} feature maps")
    octave_scales = [2.0 ** (step / spec.scales_per_octave) for step in range(spec.scales_per_octave)]
    boxes = []
    for level, feature_map in zip(levels, feature_maps):
        stride = 2.0 ** level
        base = spec.anchor_scale * stride
        # Anchors of a cell: aspect ratios outermost, octave scales innermost.
        sizes = [(scale * base / math.sqrt(ratio), scale * base * math.sqrt(ratio))
                 for ratio in spec.aspect_ratios for scale in octave_scales]
        offset = tuple(stride / 2 if size % stride == 0 or size == 1 else 0.0 for size in image_size)
        grid = _grid(feature_map, (stride, stride), offset, [h for h, _ in sizes], [w for _, w in sizes])
        if spec.normalize_coordinates:
            grid /= np.array([image_size[0], image_size[1], image_size[0], image_size[1]], np.float64)
        boxes.append(grid)
    return np.concatenate(boxes).astype(np.float32)


def generate(spec: SsdAnchors | MultiscaleAnchors, feature_maps: Sequence[FeatureMapShape],
             image_size: FeatureMapShape) -> np.ndarray:
    """Anchors [N, 4] of either generator."""
    if isinstance(spec, MultiscaleAnchors):
        return multiscale_anchors(spec, feature_maps, image_size)
    return ssd_anchors(spec, feature_maps, image_size)
