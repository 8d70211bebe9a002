"""How close two models' detections on the same image are (e.g. a uint8 build against its float build).

Each reference detection, best score first, is matched to the not yet
matched candidate detection of the same class that overlaps it most, if that
overlap has IoU >= `MATCH_IOU` (the usual detection-matching threshold).
Reported: how many reference detections were matched, and over the matched
pairs the mean IoU and the mean absolute score difference.
"""

import dataclasses
from typing import Sequence

import numpy as np
from PIL import Image

from ssd_tflite.detection import Detection, Detector

MATCH_IOU = 0.5


def box_iou(first: Sequence[float], second: Sequence[float]) -> float:
    """Intersection over union of two (ymin, xmin, ymax, xmax) boxes."""
    top, left = max(first[0], second[0]), max(first[1], second[1])
    bottom, right = min(first[2], second[2]), min(first[3], second[3])
    overlap = max(bottom - top, 0.0) * max(right - left, 0.0)
    union = ((first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
             - overlap)
    return overlap / union if union > 0 else 0.0


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How many reference detections a candidate model matched, and how closely."""
    references: int
    matched: int
    mean_iou: float  # over matched pairs; nan when none matched
    mean_score_gap: float  # over matched pairs; nan when none matched

    def __str__(self) -> str:
        if not self.matched:
            return f"0/{self.references} matched"
        return (f"{self.matched}/{self.references} matched, IoU {self.mean_iou:.2f}, "
                f"score gap {self.mean_score_gap:.3f}")


def compare(pairs: Sequence[tuple[Sequence[Detection], Sequence[Detection]]]) -> Agreement:
    """Agreement over (reference detections, candidate detections) of several images."""
    ious, gaps, references = [], [], 0
    for reference, candidate in pairs:
        unmatched = list(candidate)
        for detection in sorted(reference, key=lambda item: -item.score):
            references += 1
            same_class = [other for other in unmatched if other.class_index == detection.class_index]
            if not same_class:
                continue
            best = max(same_class, key=lambda other: box_iou(detection.box, other.box))
            iou = box_iou(detection.box, best.box)
            if iou >= MATCH_IOU:
                unmatched.remove(best)
                ious.append(iou)
                gaps.append(abs(detection.score - best.score))
    return Agreement(references, len(ious), _mean(ious), _mean(gaps))


def compare_models(reference: Detector, candidate: Detector, images: Sequence[Image.Image]) -> Agreement:
    """Agreement of two models' top detections (every one the model returns) on the same images."""
    return compare([(reference.detect(image, [], threshold=0.0), candidate.detect(image, [], threshold=0.0))
                    for image in images])
