"""COCO mAP of detect.tflite models on a COCO-format image set (COCO's own evaluator, pycocotools).

  evaluate --model=A.tflite[,B.tflite...] --annotations=instances.json --images=DIR [--max_images=N] [--per_class]
      [--labels=FILE] [--min_ap=X] [--reference=R.tflite --max_ap_drop=Y]

Each model runs in LiteRT as in `detect`, its classes named by its embedded
labels or the `<name>_labels.txt` beside it and matched to the annotations'
categories by name (see ssd_tflite/coco_evaluation.py). Prints one JSON line
per model:

  {"model": "A.tflite", "images": 128, "categories": 80, "AP": 0.28, "AP50": 0.44, "AP75": 0.29, "AR": 0.33}

with "per_class" (AP by category name, null for a category the images have no
box of) under --per_class; progress goes to stderr. As a gate (what
ssd_tflite_accuracy_test runs): --min_ap fails unless every model reaches it,
--reference evaluates that model too and fails any model whose AP is more than
--max_ap_drop below it; the figures are printed either way.
"""

import json
import sys
from typing import Optional

from ssd_tflite import cli
from absl import flags

from ssd_tflite import coco_evaluation, detection, label_map
from ssd_tflite.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_list("model", None, "The .tflite detection models to evaluate, comma-separated.")
flags.DEFINE_string("annotations", None, "COCO instances annotations (JSON: images, categories, annotations).")
flags.DEFINE_string("images", None, "The folder of the annotations' image files.")
flags.DEFINE_integer("max_images", None, "Evaluate the first N images by id only (default: all).", lower_bound=1)
flags.DEFINE_bool("per_class", False, "Also print the AP of each category.")
flags.DEFINE_string("labels", None, "Class names (one per line, or a label_map.pbtxt) for models that carry none: no "
                    "embedded metadata and no <name>_labels.txt beside them.")
flags.DEFINE_float("min_ap", None, "Fail unless every model's AP is at least this.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("reference", None, "A model to compare with: fail any model whose AP is more than --max_ap_drop "
                    "below this one's.")
flags.DEFINE_float("max_ap_drop", None, "With --reference: the largest AP a model may lose against it.",
                   lower_bound=0.0, upper_bound=1.0)
flags.mark_flags_as_required(["model", "annotations", "images"])
flags.register_multi_flags_validator(
    ["reference", "max_ap_drop"], lambda values: (values["reference"] is None) == (values["max_ap_drop"] is None),
    message="--reference and --max_ap_drop go together")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _detector(model: str) -> detection.Detector:
    detector = detection.open_detector(model)
    if not detector.labels and FLAGS.labels:
        detector.labels = label_map.read_labels(FLAGS.labels)
    return detector


def _shortfalls(scores: list[coco_evaluation.Scores], reference: Optional[coco_evaluation.Scores]) -> list[str]:
    """Why each model fails the gate (--min_ap, --reference with --max_ap_drop); empty if none does."""
    problems = []
    for model in scores:
        if FLAGS.min_ap is not None and model.ap < FLAGS.min_ap:
            problems.append(f"{model.model}: AP {model.ap:.4f} is below --min_ap {FLAGS.min_ap:g}")
        if reference is not None and model.ap < reference.ap - FLAGS.max_ap_drop:
            problems.append(f"{model.model}: AP {model.ap:.4f} is {reference.ap - model.ap:.4f} below the reference "
                            f"{reference.model}'s {reference.ap:.4f}, more than --max_ap_drop {FLAGS.max_ap_drop:g}")
    return problems


def main() -> None:
    image_set = coco_evaluation.load_image_set(FLAGS.annotations, FLAGS.images, FLAGS.max_images)
    detectors = [_detector(model) for model in FLAGS.model + ([FLAGS.reference] if FLAGS.reference else [])]
    for detector in detectors:  # refuse a model that cannot be scored before running any
        coco_evaluation.category_ids_by_class(detector.labels, image_set, detector.model_path)
    scores = []
    for detector in detectors:
        scores.append(coco_evaluation.evaluate(detector, image_set, _progress))
        line = {"model": scores[-1].model, "images": scores[-1].images, "categories": scores[-1].categories,
                "AP": scores[-1].ap, "AP50": scores[-1].ap50, "AP75": scores[-1].ap75, "AR": scores[-1].ar}
        if FLAGS.per_class:
            line["per_class"] = scores[-1].per_class
        print(json.dumps(line), flush=True)
    reference = scores.pop() if FLAGS.reference else None
    problems = _shortfalls(scores, reference)
    if problems:
        raise UserError("accuracy below the bound:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    cli.run(main)
