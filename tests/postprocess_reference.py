"""An independent NumPy version of what TFLite_Detection_PostProcess computes (fast NMS).

Box decoding is the Faster R-CNN box coder (Ren et al. 2015, eq. 2) inverted:
ycenter = ty / y_scale * ha + ya, height = exp(th / h_scale) * ha (same for x,
width). Fast NMS takes each anchor's best non-background class, drops scores
below the threshold, and greedily keeps boxes in decreasing score order whose
IoU with every kept box is at most the IoU threshold.
"""

import numpy as np


def decode(encodings: np.ndarray, anchors: np.ndarray, scales) -> np.ndarray:
    """[N, 4] codes and (ycenter, xcenter, h, w) anchors -> [N, 4] (ymin, xmin, ymax, xmax)."""
    y_scale, x_scale, h_scale, w_scale = scales
    ya, xa, ha, wa = anchors.T.astype(np.float64)
    ty, tx, th, tw = encodings.T.astype(np.float64)
    ycenter = ty / y_scale * ha + ya
    xcenter = tx / x_scale * wa + xa
    half_h = np.exp(th / h_scale) * ha / 2
    half_w = np.exp(tw / w_scale) * wa / 2
    return np.stack([ycenter - half_h, xcenter - half_w, ycenter + half_h, xcenter + half_w], axis=1)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    top = np.maximum(box[0], others[:, 0])
    left = np.maximum(box[1], others[:, 1])
    bottom = np.minimum(box[2], others[:, 2])
    right = np.minimum(box[3], others[:, 3])
    intersection = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return intersection / np.maximum(area + areas - intersection, 1e-12)


def fast_nms(boxes: np.ndarray, class_scores: np.ndarray, score_threshold: float, iou_threshold: float,
             max_detections: int):
    """class_scores [N, num_classes + 1] with background first -> (boxes, classes, scores) kept."""
    foreground = class_scores[:, 1:]
    classes = foreground.argmax(axis=1)
    scores = foreground.max(axis=1)
    order = [index for index in np.argsort(-scores, kind="stable") if scores[index] >= score_threshold]
    kept = []
    for index in order:
        if len(kept) == max_detections:
            break
        if not kept or np.all(iou(boxes[index], boxes[kept]) <= iou_threshold):
            kept.append(index)
    kept = np.array(kept, dtype=int)
    return boxes[kept], classes[kept], scores[kept]
