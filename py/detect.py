"""Runs a detect.tflite model on an image and prints what it finds.

  detect --model M.tflite --image photo.jpg [--labels L] [--threshold 0.5] [--output annotated.png]

Labels and input normalization come from the model's embedded TFLite
metadata, or else from the `<name>_labels.txt` and the model contract `<name>_contract.json`
that the ssd_tflite_model rule writes beside `<name>.tflite`.
"""

import io
import os

from ssd_tflite import cli
from absl import flags
from PIL import Image

from ssd_tflite import atomic_files, detection, label_map
from ssd_tflite.drawing import draw
from ssd_tflite.errors import UserError
from ssd_tflite.images import load_image

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .tflite model ending in TFLite_Detection_PostProcess.")
flags.DEFINE_string("image", None, "Image to run it on (JPEG, PNG, BMP, GIF or WebP).")
flags.DEFINE_string("labels", None, "Class names, one per line (default: the model's own).")
flags.DEFINE_string("contract", None, "The model contract (JSON) giving the input's normalization (default: the "
                    "model's embedded metadata, else <model>_contract.json if present).")
flags.DEFINE_float("threshold", 0.5, "Lowest score to report.")
flags.DEFINE_string("output", None, "Where to write the image with the detections drawn (PNG).")
flags.mark_flags_as_required(["model", "image"])


def write_png(image: Image.Image, path: str) -> None:
    """Writes `image` to `path` as a PNG, all or nothing, into an existing folder."""
    fix = "give --output a file name in a folder you can write to"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: cannot write the annotated image there: no folder {folder}; {fix}")
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    try:
        atomic_files.write_file(path, encoded.getvalue())
    except OSError as error:
        raise UserError(f"{path}: cannot write the annotated image there ({error.strerror}); {fix}") from None


def main() -> None:
    image = load_image(FLAGS.image)
    detector = detection.open_detector(FLAGS.model, FLAGS.contract)
    labels = label_map.read_labels(FLAGS.labels) if FLAGS.labels else detector.labels
    found = detector.detect(image, labels, FLAGS.threshold)
    print(f"{len(found)} detection(s) with score >= {FLAGS.threshold} in {FLAGS.image}")
    for item in found:
        ymin, xmin, ymax, xmax = item.box
        print(f"{item.label}\t{item.score:.3f}\tymin={ymin:.0f} xmin={xmin:.0f} ymax={ymax:.0f} xmax={xmax:.0f}")
    if FLAGS.output:
        write_png(draw(image, found), FLAGS.output)
        print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    cli.run(main)
