"""Compares two detect.tflite models' detections on the same images, e.g. a uint8 build with its float build.

  compare_detections --reference float.tflite --candidate uint8.tflite --images a.jpg,b.jpg

Each model's input normalization comes from its embedded metadata or the
model contract `<name>_contract.json` beside it, as in `detect`. Prints how many of the reference's top detections the
candidate matched (same class, IoU >= 0.5), with the mean IoU and mean score
difference of the matched pairs (see ssd_tflite/agreement.py).
"""

from ssd_tflite import cli
from absl import flags

from ssd_tflite import agreement, detection
from ssd_tflite.images import load_image

FLAGS = flags.FLAGS
flags.DEFINE_string("reference", None, "The model to compare against (e.g. the float build).")
flags.DEFINE_string("candidate", None, "The model compared (e.g. a uint8 build).")
flags.DEFINE_list("images", None, "Images to run both on (JPEG, PNG, BMP, GIF or WebP).")
flags.mark_flags_as_required(["reference", "candidate", "images"])


def main() -> None:
    images = [load_image(path) for path in FLAGS.images]
    found = agreement.compare_models(detection.open_detector(FLAGS.reference),
                                     detection.open_detector(FLAGS.candidate), images)
    print(f"{FLAGS.candidate} against {FLAGS.reference} on {len(images)} image(s): {found}")


if __name__ == "__main__":
    cli.run(main)
