"""Runs a detect.tflite model on an image and prints what it finds.

  detect --model M.tflite --image photo.jpg [--labels L] [--threshold 0.5] [--output annotated.png]

Labels and input normalization come from the model's embedded TFLite
metadata, or else from the `<name>_labels.txt` and `<name>_metadata.json`
that the ssd_tflite_model rule writes beside `<name>.tflite`.
"""

from ssd_tflite import cli
from absl import flags

from ssd_tflite import detection

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .tflite model ending in TFLite_Detection_PostProcess.")
flags.DEFINE_string("image", None, "Image to run it on (JPEG, PNG, anything Pillow reads).")
flags.DEFINE_string("labels", None, "Class names, one per line (default: the model's own).")
flags.DEFINE_string("metadata", None, "Model metadata JSON (default: the model's embedded metadata, else "
                    "<model>_metadata.json if present).")
flags.DEFINE_float("threshold", 0.5, "Lowest score to report.")
flags.DEFINE_string("output", None, "Where to write the image with the detections drawn (PNG).")
flags.mark_flags_as_required(["model", "image"])


def main() -> None:
    image = detection.load_image(FLAGS.image)
    detector = detection.open_detector(FLAGS.model, FLAGS.metadata)
    labels = detection.load_labels(FLAGS.labels) if FLAGS.labels else detector.labels
    found = detector.detect(image, labels, FLAGS.threshold)
    print(f"{len(found)} detection(s) with score >= {FLAGS.threshold} in {FLAGS.image}")
    for item in found:
        ymin, xmin, ymax, xmax = item.box
        print(f"{item.label}\t{item.score:.3f}\tymin={ymin:.0f} xmin={xmin:.0f} ymax={ymax:.0f} xmax={xmax:.0f}")
    if FLAGS.output:
        detection.draw(image, found).save(FLAGS.output, format="PNG")
        print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    cli.run(main)
