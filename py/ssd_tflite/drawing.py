"""Drawing detections on an image: each box with its label and score."""

from typing import Sequence

from PIL import Image, ImageDraw

from ssd_tflite.detection import Detection


def draw(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    """A copy of the image with each detection's box and label drawn on it."""
    annotated = image.copy()
    pen = ImageDraw.Draw(annotated)
    for detection in detections:
        ymin, xmin, ymax, xmax = detection.box
        pen.rectangle([xmin, ymin, xmax, ymax], outline=(255, 40, 40), width=3)
        caption = f"{detection.label} {detection.score:.2f}"
        left, top, right, bottom = pen.textbbox((xmin, ymin), caption)
        pen.rectangle([left, top, right + 4, bottom + 2], fill=(255, 40, 40))
        pen.text((xmin + 2, ymin), caption, fill=(255, 255, 255))
    return annotated
