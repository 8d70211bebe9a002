"""Runs a produced detect.tflite on images and gives its detections.

The input type and size come from the model itself, which must have the
contract of TFLite_Detection_PostProcess models: one image input
[1, height, width, 3] (uint8 or float32), four float32 outputs. A float
model's input normalization and the class names come from the TFLite Model
Metadata embedded in it, or else from the model contract `<name>_contract.json`
and the `<name>_labels.txt` the ssd_tflite_model rule writes beside it; without
either the input is (pixel - 128) / 128. A uint8 model takes the pixels as
they are. LiteRT runs the model in a bounded child process (bounded_run).
"""

import dataclasses
import itertools
import os
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from ssd_tflite import bounded_run, contract, flatbuffer_model, label_map, tflite_metadata
from ssd_tflite.architecture import TOCO_INPUT
from ssd_tflite.errors import InputError
from ssd_tflite.images import normalized_pixels, resized_pixels

DEFAULT_MEAN = TOCO_INPUT.mean
DEFAULT_STD = TOCO_INPUT.std


@dataclasses.dataclass(frozen=True)
class Detection:
    label: str
    class_index: int
    score: float
    box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax in pixels of the original image


def load_normalization(contract_path: Optional[str]) -> tuple[Sequence[float], Sequence[float]]:
    """Per-channel (mean, std) of a float model's input, from its model contract if given."""
    if not contract_path:
        return DEFAULT_MEAN, DEFAULT_STD
    return contract.normalization(contract.read(contract_path), contract_path)


def _shape_text(shape: Sequence[object]) -> str:
    return f"[{', '.join(str(dim) for dim in shape)}]"


def _checked_outputs(outputs: list[np.ndarray], path: str) -> list[np.ndarray]:
    """The outputs of a run, checked to be the contract's; InputError naming the first that is not."""
    if len(outputs) != len(flatbuffer_model.DETECTION_OUTPUTS):
        raise InputError(f"{path}: LiteRT gave {len(outputs)} outputs, but {flatbuffer_model.DETECTION_CONTRACT}")
    detections = outputs[0].shape[1] if outputs[0].ndim == 3 else "D"
    expected = ((1, detections, 4), (1, detections), (1, detections), (1,))
    for name, output, shape in zip(flatbuffer_model.DETECTION_OUTPUTS, outputs, expected):
        if output.shape != shape or output.dtype != np.float32:
            raise InputError(f"{path}: its {name} output is {_shape_text(output.shape)} of {output.dtype}, expected "
                             f"{_shape_text(shape)} of float32: {flatbuffer_model.DETECTION_CONTRACT}")
    boxes, classes, scores, (count,) = outputs
    if not (np.isfinite(count) and 0 <= count <= detections):
        raise InputError(f"{path}: its count output is {count}, not a number of detections in 0..{detections}")
    found = int(count)
    if not all(np.isfinite(output[0, :found]).all() for output in (boxes, classes, scores)):
        raise InputError(f"{path}: its boxes, classes or scores of the {found} detections are not all finite")
    return outputs


class Detector:
    """A detect.tflite model, run by LiteRT in a bounded child process (bounded_run)."""

    def __init__(self, model_path: str, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD,
                 labels: Sequence[str] = ()):
        if not os.path.isfile(model_path):
            raise InputError(f"{model_path}: no such model file")
        self.model_path = model_path
        self.height, self.width, self.input_type = flatbuffer_model.image_input(flatbuffer_model.read(model_path), model_path)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.labels = list(labels)  # class names by class index, if known

    def input_tensor(self, image: Image.Image) -> np.ndarray:
        """The image resized to the model's input, in its type and normalization."""
        if self.input_type == np.uint8:
            return resized_pixels(image, self.height, self.width)[np.newaxis].astype(np.uint8)
        return normalized_pixels(image, self.height, self.width, self.mean, self.std)[np.newaxis]

    def raw_outputs(self, tensor: np.ndarray) -> list[np.ndarray]:
        """boxes [1, D, 4], classes [1, D], scores [1, D], count [1]."""
        return _checked_outputs(bounded_run.run_model(self.model_path, [tensor])[0], self.model_path)

    def detect(self, image: Image.Image, labels: Sequence[str], threshold: float) -> list[Detection]:
        return next(self.detect_many([image], labels, threshold))

    def detect_many(self, images: Iterable[Image.Image], labels: Sequence[str],
                    threshold: float) -> Iterator[list[Detection]]:
        """The detections of each image, run bounded_run.INPUTS_PER_CHILD images to a child process."""
        remaining = iter(images)
        while chunk := list(itertools.islice(remaining, bounded_run.INPUTS_PER_CHILD)):
            tensors = [self.input_tensor(image) for image in chunk]
            for image, outputs in zip(chunk, bounded_run.run_model(self.model_path, tensors)):
                yield self._detections(image, _checked_outputs(outputs, self.model_path), labels, threshold)

    @staticmethod
    def _detections(image: Image.Image, outputs: list[np.ndarray], labels: Sequence[str],
                    threshold: float) -> list[Detection]:
        boxes, classes, scores, count = outputs
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


def beside_model(model_path: str, suffix: str) -> Optional[str]:
    """`<name><suffix>` next to `<name>.tflite` (as the ssd_tflite_model rule writes them), if it exists."""
    path = os.path.splitext(model_path)[0] + suffix
    return path if os.path.exists(path) else None


def open_detector(model_path: str, contract_path: Optional[str] = None) -> Detector:
    """The model with its input normalization and labels.

    Normalization: from the contract at `contract_path` if given, else the embedded metadata,
    else `<name>_contract.json`. Labels: embedded, else `<name>_labels.txt`.
    """
    if not os.path.isfile(model_path):
        raise InputError(f"{model_path}: no such model file")
    embedded = tflite_metadata.read(model_path)
    if contract_path or embedded is None:
        mean, std = load_normalization(contract_path or beside_model(model_path, contract.CONTRACT_SUFFIX))
    else:
        mean, std = embedded.mean, embedded.std
    labels = (list(embedded.labels) if embedded
              else label_map.read_labels(beside_model(model_path, contract.LABELS_SUFFIX)))
    return Detector(model_path, mean, std, labels)
