"""Runs a produced detect.tflite on an image: input preparation, inference, drawing.

The input type and size come from the model itself, which must have the
contract of TFLite_Detection_PostProcess models: one image input
[1, height, width, 3] (uint8 or float32), four float32 outputs. A float
model's input normalization and the class names come from the TFLite Model
Metadata embedded in it, or else from the `<name>_metadata.json` and
`<name>_labels.txt` the ssd_tflite_model rule writes beside it; without
either the input is (pixel - 128) / 128. A uint8 model takes the pixels as
they are.

LiteRT trusts model files: a damaged or hostile one can make it crash, loop
or allocate without bound. So every run of a model is in a child process
with bounded memory, time and output, on the real images (up to RUN_INPUTS
to a child), never once on zeros to stand for them: a model's memory can depend on its input's values (measured: a model
with this contract whose FILL is sized by the largest pixel peaks at 1063 MiB
on zeros, 1832 MiB on a white image), even though our models' runs peak the
same on zeros and on photos (within 0.1 MiB: 58 MiB for SSD MobileNet v2
quantized to 626 MiB for ResNet50 FPN float).
"""

import dataclasses
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import warnings
from typing import BinaryIO, Iterable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ssd_tflite import flatbuffer_model, label_map, tflite_metadata
from ssd_tflite.errors import InputError

DEFAULT_MEAN = (128.0, 128.0, 128.0)
DEFAULT_STD = (128.0, 128.0, 128.0)


@dataclasses.dataclass(frozen=True)
class Detection:
    label: str
    class_index: int
    score: float
    box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax in pixels of the original image


# What photos and screenshots come as, and what browsers (the demo page) decode too. Not Pillow's
# other formats: PostScript would run Ghostscript, and TIFF, JPEG 2000, PSD, ICO, ... bring
# decoders that no photo needs.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
# What Pillow raises for a damaged file: truncation is an OSError, an oversized PNG text chunk a
# ValueError, a broken chunk a SyntaxError, a missing frame an EOFError.
_DECODING_ERRORS = (OSError, ValueError, SyntaxError, EOFError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def _decoded(stream: BinaryIO) -> Image.Image:
    """The image in `stream` as RGB. Pillow's decompression-bomb warning (above Image.MAX_IMAGE_PIXELS,
    89.5 megapixels: beyond 50-megapixel phone photos, 268 MB as RGB) is an error here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(stream, formats=IMAGE_FORMATS) as image:
            return image.convert("RGB")


def load_image(path: str) -> Image.Image:
    """The image file at `path` (JPEG, PNG, BMP, GIF or WebP) as RGB; InputError if it is anything else."""
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the image: {error.strerror}") from None
    with stream:
        try:
            return _decoded(stream)
        except UnidentifiedImageError:
            raise InputError(f"{path}: not an image in a format we read ({', '.join(IMAGE_FORMATS)}); "
                             "convert it to one") from None
        except _BOMB_ERRORS as error:
            raise InputError(f"{path}: too large to be a photo for a detector ({error}); scale it down") from None
        except _DECODING_ERRORS as error:
            raise InputError(f"{path}: a damaged image ({type(error).__name__}: {error})") from None


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
        mean, std = model_input["mean"], model_input["std"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{metadata_path}: not a model metadata file with input.mean and input.std: {error}") from None
    return tflite_metadata.checked_normalization(mean, std, f"{metadata_path}: input")


# What one run of a model may take: LiteRT trusts model files, and a damaged one can make it
# crash, loop or allocate without bound. Each run is a child process, which turns that into a
# named error. Our largest model, ResNet50 FPN float, peaks at 626 MiB and takes 2 to 5 s here.
RUN_MEMORY_BYTES = 16 << 30  # address space
RUN_SECONDS = 600
# Images one child runs (loading LiteRT and the model once): 16 ResNet50 FPN runs take under 90 s.
RUN_INPUTS = 16
# The four outputs of D detections take 24 D + 4 bytes: 244 for D = 10, 2.4 KB for D = 100.
RUN_OUTPUT_BYTES = 1 << 20
_RUN = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, work, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
interpreter = Interpreter(model_path=model)
interpreter.allocate_tensors()
for index in range(count):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.load(f"{work}/input{index}.npy"))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(output["index"]) for output in interpreter.get_output_details()]
    np.savez(f"{work}/outputs{index}.npz", *outputs, allow_pickle=False)
"""


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


def _limit_run() -> None:
    for kind, bound in ((resource.RLIMIT_AS, RUN_MEMORY_BYTES), (resource.RLIMIT_FSIZE, RUN_OUTPUT_BYTES)):
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:  # a process may only lower its hard limit
            bound = min(bound, hard)
        resource.setrlimit(kind, (bound, bound))


def _failure(run: subprocess.CompletedProcess) -> str:
    """Why a run of LiteRT failed, from its exit status and last line of errors."""
    if run.returncode < 0:
        return f"LiteRT crashed on it ({signal.Signals(-run.returncode).name})"
    last_line = (run.stderr.strip().splitlines() or ["no message"])[-1].rstrip(".")
    return (f"LiteRT failed on it, run with at most {RUN_MEMORY_BYTES / (1 << 30):g} GiB of memory and "
            f"{RUN_OUTPUT_BYTES} bytes of outputs: {last_line}")


def _run_model(model_path: str, tensors: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """The model's outputs for each input tensor (at most RUN_INPUTS), from LiteRT in one child process with
    bounded memory, time and output size."""
    with tempfile.TemporaryDirectory(prefix="detect.") as work:
        for index, tensor in enumerate(tensors):
            np.save(os.path.join(work, f"input{index}.npy"), tensor)
        try:
            # -B: no .pyc files, which the output size limit could cut short.
            run = subprocess.run([sys.executable, "-B", "-c", _RUN, model_path, work, str(len(tensors))],
                                 capture_output=True, text=True, preexec_fn=_limit_run, timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            raise InputError(f"{model_path}: LiteRT did not finish running it on {len(tensors)} image(s) within "
                             f"{RUN_SECONDS} s (a detect.tflite takes seconds an image). Is the file complete and a "
                             "TFLite detection model?") from None
        if run.returncode:
            raise InputError(f"{model_path}: {_failure(run)}. Is the file complete and a TFLite detection model?")
        results = []
        for index in range(len(tensors)):
            with np.load(os.path.join(work, f"outputs{index}.npz")) as outputs:
                results.append([outputs[f"arr_{output}"] for output in range(len(outputs.files))])
        return results


class Detector:
    """A detect.tflite model, run by LiteRT in a child process (see _run_model)."""

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
        return _checked_outputs(_run_model(self.model_path, [tensor])[0], self.model_path)

    def detect(self, image: Image.Image, labels: Sequence[str], threshold: float) -> list[Detection]:
        return next(self.detect_many([image], labels, threshold))

    def detect_many(self, images: Iterable[Image.Image], labels: Sequence[str],
                    threshold: float) -> Iterator[list[Detection]]:
        """The detections of each image, run RUN_INPUTS images to a child process."""
        remaining = iter(images)
        while chunk := list(itertools.islice(remaining, RUN_INPUTS)):
            tensors = [self.input_tensor(image) for image in chunk]
            for image, outputs in zip(chunk, _run_model(self.model_path, tensors)):
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


def open_detector(model_path: str, metadata_path: Optional[str] = None) -> Detector:
    """The model with its input normalization and labels.

    Normalization: from `metadata_path` if given, else the embedded metadata,
    else `<name>_metadata.json`. Labels: embedded, else `<name>_labels.txt`.
    """
    if not os.path.isfile(model_path):
        raise InputError(f"{model_path}: no such model file")
    embedded = tflite_metadata.read(model_path)
    if metadata_path or embedded is None:
        mean, std = load_normalization(metadata_path or beside_model(model_path, "_metadata.json"))
    else:
        mean, std = embedded.mean, embedded.std
    labels = list(embedded.labels) if embedded else label_map.read_labels(beside_model(model_path, "_labels.txt"))
    return Detector(model_path, mean, std, labels)
