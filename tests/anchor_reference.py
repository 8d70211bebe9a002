"""An independent, loop-by-loop implementation of the published anchor formulas.

SSD (Liu et al. 2016, eq. 4): scale s_k = s_min + (s_max - s_min) (k - 1) / (m - 1),
box w = s_k sqrt(a), h = s_k / sqrt(a), one extra box of scale sqrt(s_k s_k+1) at
ratio 1, centres at ((i + 0.5) / f_k, (j + 0.5) / f_k); the lowest layer keeps
(0.1, 1), (s_0, 2), (s_0, 1/2). RetinaNet (Lin et al. 2017): on level l an anchor
of side anchor_scale * 2^l * 2^(o / octave_scales) per ratio, centred on the
stride-2^l grid. Returns (ycenter, xcenter, height, width) rows.
"""

import math


def ssd_anchors(min_scale, max_scale, aspect_ratios, feature_maps):
    layers = len(feature_maps)
    scales = [min_scale + (max_scale - min_scale) * k / (layers - 1) for k in range(layers)] + [1.0]
    rows = []
    for k, size in enumerate(feature_maps):
        if k == 0:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[k], ratio) for ratio in aspect_ratios]
            boxes.append((math.sqrt(scales[k] * scales[k + 1]), 1.0))
        for i in range(size):
            for j in range(size):
                for scale, ratio in boxes:
                    rows.append(((i + 0.5) / size, (j + 0.5) / size,
                                 scale / math.sqrt(ratio), scale * math.sqrt(ratio)))
    return rows


def retinanet_anchors(min_level, max_level, anchor_scale, aspect_ratios, scales_per_octave, image_size):
    rows = []
    for level in range(min_level, max_level + 1):
        stride = 2 ** level
        size = math.ceil(image_size / stride)
        for i in range(size):
            for j in range(size):
                for ratio in aspect_ratios:
                    for octave in range(scales_per_octave):
                        side = anchor_scale * stride * 2 ** (octave / scales_per_octave)
                        rows.append(((i + 0.5) * stride / image_size, (j + 0.5) * stride / image_size,
                                     side / math.sqrt(ratio) / image_size, side * math.sqrt(ratio) / image_size))
    return rows
