"""Runs a produced detect.tflite on an image: input preparation, inference, drawing.

The input type and quantization come from the model itself. A float model's
input normalization and the class names come from the TFLite Model Metadata
embedded in it, or else from the `<name>_metadata.json` and
`<name>_labels.txt` the ssd_tflite_model rule writes beside it; without
either the input is (pixel - 128) / 128. A uint8 model takes the pixels as
they are.
"""

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ssd_tflite import tflite_metadata
from ssd_tflite.errors import InputError

DEFAULT_MEAN = (128.0, 128.0, 128.0)
DEFAULT_STD = (128.0, 128.0, 128.0)


@dataclasses.dataclass(frozen=True)
class Detection:
    label: str
    class_index: int
    score: float
    box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax in pixels of the original image


def load_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"{path}: not an image Pillow can read (JPEG, PNG, ...): {error}") from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{path}: too large to be a photo for a detector: {error}") from None


def resized_pixels(image: Image.Image, height: int, width: int) -> np.ndarray:
    """The image resized (bilinear) to height x width, as float32 RGB pixels [H, W, 3]."""
    return np.asarray(image.resize((width, height), Image.BILINEAR), np.float32)


def normalized_pixels(image: Image.Image, height: int, width: int, mean: Sequence[float],
                      std: Sequence[float]) -> np.ndarray:
    """(pixel - mean) / std per RGB channel of the resized image, float32 [H, W, 3]."""
    pixels = resized_pixels(image, height, width)
    return ((pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def load_normalization(metadata_path: Optional[str]) -> tuple[Sequence[float], Sequence[float]]:
    """Per-channel (mean, std) of a float model's input, from its metadata if given."""
    if not metadata_path:
        return DEFAULT_MEAN, DEFAULT_STD
    try:
        with open(metadata_path) as metadata_file:
            model_input = json.load(metadata_file)["input"]
        return tuple(model_input["mean"]), tuple(model_input["std"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{metadata_path}: not a model metadata file with input.mean and input.std: {error}") from None


def load_labels(path: Optional[str]) -> list[str]:
    """Class names by class index; none without a file (detections are then named class_<id>)."""
    if not path:
        return []
    try:
        with open(path) as labels_file:
            return labels_file.read().splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read labels: {error.strerror}") from None


class Detector:
    """A detect.tflite model in the ai-edge-litert interpreter."""

    def __init__(self, model_path: str, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD,
                 labels: Sequence[str] = ()):
        from ai_edge_litert.interpreter import Interpreter  # loads a large native library

        if not os.path.isfile(model_path):
            raise InputError(f"{model_path}: no such model file")
        try:
            self.interpreter = Interpreter(model_path=model_path)
        except (ValueError, RuntimeError) as error:
            raise InputError(f"{model_path}: not a TFLite model: {error}") from None
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        if len(self.outputs) != 4:
            raise InputError(f"{model_path}: expected the 4 outputs of TFLite_Detection_PostProcess, "
                             f"found {len(self.outputs)}")
        _, self.height, self.width, _ = (int(dim) for dim in self.input["shape"])
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.labels = list(labels)  # class names by class index, if known

    def input_tensor(self, image: Image.Image) -> np.ndarray:
        """The image resized to the model's input, in its type and normalization."""
        if self.input["dtype"] == np.uint8:
            return resized_pixels(image, self.height, self.width)[np.newaxis].astype(np.uint8)
        return normalized_pixels(image, self.height, self.width, self.mean, self.std)[np.newaxis]

    def raw_outputs(self, tensor: np.ndarray) -> list[np.ndarray]:
        """boxes [1, D, 4], classes [1, D], scores [1, D], count [1]."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(output["index"]) for output in self.outputs]

    def detect(self, image: Image.Image, labels: Sequence[str], threshold: float) -> list[Detection]:
        boxes, classes, scores, count = self.raw_outputs(self.input_tensor(image))
        scale = np.array([image.height, image.width, image.height, image.width], np.float32)
        detections = []
        for index in range(int(count[0])):
            if scores[0, index] < threshold:
                continue
            class_index = int(classes[0, index])
            label = labels[class_index] if 0 <= class_index < len(labels) else f"class_{class_index + 1}"
            box = tuple(float(value) for value in np.clip(boxes[0, index], 0.0, 1.0) * scale)
            detections.append(Detection(label, class_index, float(scores[0, index]), box))
        return detections


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


def beside_model(model_path: str, suffix: str) -> Optional[str]:
    """`<name><suffix>` next to `<name>.tflite` (as the ssd_tflite_model rule writes them), if it exists."""
    path = os.path.splitext(model_path)[0] + suffix
    return path if os.path.exists(path) else None


# What the trial run of a model may take: LiteRT trusts model files, and a damaged one can make it
# allocate without bound or crash. A trial in a child process turns that into a named error.
TRIAL_MEMORY_BYTES = 16 << 30
_TRIAL = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
"""


def check_runs(model_path: str) -> None:
    """Raises InputError unless LiteRT loads and runs the model, tried in a child process."""
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (TRIAL_MEMORY_BYTES, TRIAL_MEMORY_BYTES))

    trial = subprocess.run([sys.executable, "-c", _TRIAL, model_path], capture_output=True, text=True,
                           preexec_fn=limit_memory, timeout=600)
    if trial.returncode == 0:
        return
    if trial.returncode < 0:
        reason = f"LiteRT crashed on it ({signal.Signals(-trial.returncode).name})"
    else:
        reason = f"LiteRT refused it: {(trial.stderr.strip().splitlines() or ['no message'])[-1]}"
    raise InputError(f"{model_path}: {reason}. Is the file complete and a TFLite detection model?")


def open_detector(model_path: str, metadata_path: Optional[str] = None) -> Detector:
    """The model with its input normalization and labels.

    Normalization: from `metadata_path` if given, else the embedded metadata,
    else `<name>_metadata.json`. Labels: embedded, else `<name>_labels.txt`.
    """
    if not os.path.isfile(model_path):
        raise InputError(f"{model_path}: no such model file")
    check_runs(model_path)
    embedded = tflite_metadata.read(model_path)
    if metadata_path or embedded is None:
        mean, std = load_normalization(metadata_path or beside_model(model_path, "_metadata.json"))
    else:
        mean, std = embedded.mean, embedded.std
    labels = list(embedded.labels) if embedded else load_labels(beside_model(model_path, "_labels.txt"))
    return Detector(model_path, mean, std, labels)
