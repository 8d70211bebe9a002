"""COCO mAP on real weights and real images: ssd_tflite.coco_evaluation and //cli:evaluate.

The model is the Coral build of the zoo's SSD MobileNet v2 quantized COCO model
(testdata/real_models, see testdata/README.md); the images are coco128
(testdata/coco128, see its SOURCES.md). That model carries no metadata, so
its labels come from a `<name>_labels.txt` beside it: models/coco_labels.txt,
the zoo's 90 COCO classes.
"""

import contextlib
import io
import json
import os
import random
import subprocess

from absl.testing import absltest
from pycocotools.cocoeval import COCOeval

import testing
from ssd_tflite import coco_evaluation, detection, tflite_metadata
from ssd_tflite.errors import InputError
from ssd_tflite.images import load_image

CORAL_MODEL = testing.testdata("real_models/ssd_mobilenet_v2_quant_coco_coral.tflite")
ANNOTATIONS = testing.testdata("coco128/instances.json")
IMAGES = testing.testdata("coco128/images")
COCO_LABELS = testing.runfile("models/coco_labels.txt")
# Measured outside this repository, by an independent evaluator: LiteRT 2.3 and pycocotools 2.0.11,
# resize to 300x300 bilinear, model class i = COCO id i + 1, all 128 images (NOTES.md of the shared
# reference data, "COCO mAP on real weights", and coco128/SOURCES.md).
CORAL_AP, CORAL_AP50 = 0.284, 0.436
TOLERANCE = 0.01
# A few images keep the label-mapping checks quick; 21 categories have boxes in the first 16.
FEW_IMAGES = 16
# Labels of a model that knows a few COCO classes (no toothbrush in those images, though).
KEPT_LABELS = ("person", "car", "giraffe", "orange", "truck", "dog", "elephant", "toothbrush")


def read_lines(path: str) -> list[str]:
    with open(path) as lines:
        return lines.read().splitlines()


def coco_labels_keeping(names: tuple[str, ...]) -> list[str]:
    """models/coco_labels.txt with every other label replaced by ???."""
    return [label if label in names else "???" for label in read_lines(COCO_LABELS)]


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([testing.runfile("cli/evaluate"), *args], capture_output=True, text=True, timeout=900)


class EvaluateTest(absltest.TestCase):

    def labelled_model(self, labels: list[str], name: str = "coral") -> str:
        """The Coral model as `name`.tflite in a new folder, with `labels` beside it as its labels file."""
        folder = self.create_tempdir().full_path
        model = os.path.join(folder, name + ".tflite")
        os.symlink(CORAL_MODEL, model)
        with open(os.path.join(folder, name + "_labels.txt"), "w") as labels_file:
            labels_file.write("".join(label + "\n" for label in labels))
        return model

    def labelled_detector(self, labels: list[str]) -> detection.Detector:
        return detection.open_detector(self.labelled_model(labels))

    def annotations_file(self, dataset: dict) -> str:
        return self.create_tempfile("instances.json", json.dumps(dataset)).full_path

    def test_the_coral_model_scores_the_independently_measured_ap_on_coco128(self):
        self.assertIsNone(tflite_metadata.read(CORAL_MODEL))  # hence the labels file beside it
        image_set = coco_evaluation.load_image_set(ANNOTATIONS, IMAGES)
        scores = coco_evaluation.evaluate(self.labelled_detector(read_lines(COCO_LABELS)), image_set)
        self.assertEqual((scores.images, scores.categories), (128, 80))
        self.assertAlmostEqual(scores.ap, CORAL_AP, delta=TOLERANCE)
        self.assertAlmostEqual(scores.ap50, CORAL_AP50, delta=TOLERANCE)

    def test_classes_map_by_label_name_not_by_position(self):
        # The reference: the detections of the same model, class i taken as COCO id i + 1 (the zoo's
        # numbering, no names), scored by pycocotools on the kept categories only.
        with open(ANNOTATIONS) as annotations:
            dataset = json.load(annotations)
        image_set = coco_evaluation.load_image_set(ANNOTATIONS, IMAGES, FEW_IMAGES)
        detector = self.labelled_detector(read_lines(COCO_LABELS))
        results = [{"image_id": image["id"], "category_id": found.class_index + 1, "score": found.score,
                    "bbox": [found.box[1], found.box[0], found.box[3] - found.box[1], found.box[2] - found.box[0]]}
                   for image in image_set.images
                   for found in detector.detect(load_image(os.path.join(IMAGES, image["file_name"])),
                                                [], float("-inf"))]
        kept_ids = sorted(category["id"] for category in dataset["categories"] if category["name"] in KEPT_LABELS)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' report of its steps
            reference = COCOeval(image_set.ground_truth, image_set.ground_truth.loadRes(results), "bbox")
            reference.params.imgIds = [image["id"] for image in image_set.images]
            reference.params.catIds = kept_ids
            reference.evaluate()
            reference.accumulate()
            reference.summarize()

        # Evaluated: the model with only the kept labels (the others ???), on annotations whose category
        # ids are shuffled to other numbers (and listed in another order), so that only names can match.
        new_ids = random.Random(7).sample(range(1000, 2000), len(dataset["categories"]))
        renumbered = dict(zip((category["id"] for category in dataset["categories"]), new_ids))
        for record in dataset["categories"]:
            record["id"] = renumbered[record["id"]]
        for record in dataset["annotations"]:
            record["category_id"] = renumbered[record["category_id"]]
        dataset["categories"].reverse()
        renumbered_set = coco_evaluation.load_image_set(self.annotations_file(dataset), IMAGES, FEW_IMAGES)
        scores = coco_evaluation.evaluate(self.labelled_detector(coco_labels_keeping(KEPT_LABELS)), renumbered_set)

        self.assertEqual(scores.categories, len(KEPT_LABELS))
        self.assertGreater(reference.stats[0], 0.1)
        for evaluated, expected in zip((scores.ap, scores.ap50, scores.ap75, scores.ar), reference.stats[[0, 1, 2, 8]]):
            self.assertAlmostEqual(evaluated, expected, delta=1e-9)
        self.assertIsNone(scores.per_class["toothbrush"])  # no box of it in these images: COCO leaves it out
        self.assertCountEqual(scores.per_class, KEPT_LABELS)

    def test_labels_that_name_no_category_are_refused_naming_model_and_annotations(self):
        image_set = coco_evaluation.load_image_set(ANNOTATIONS, IMAGES)
        detector = self.labelled_detector(["???", "Person", "cars"])
        with self.assertRaisesRegex(InputError, "none of its 3 labels names a category") as refused:
            coco_evaluation.evaluate(detector, image_set)
        self.assertIn(detector.model_path, str(refused.exception))
        self.assertIn(ANNOTATIONS, str(refused.exception))
        with self.assertRaisesRegex(InputError, "the model has no labels"):
            coco_evaluation.evaluate(detection.open_detector(CORAL_MODEL), image_set)

    def test_images_without_boxes_of_the_models_categories_are_refused(self):
        with open(ANNOTATIONS) as annotations:
            dataset = json.load(annotations)
        dogs = {category["id"] for category in dataset["categories"] if category["name"] == "dog"}
        dataset["annotations"] = [box for box in dataset["annotations"] if box["category_id"] not in dogs]
        image_set = coco_evaluation.load_image_set(self.annotations_file(dataset), IMAGES)
        with self.assertRaisesRegex(InputError, 'none of the 128 images to evaluate has a box of the categories '
                                                r'.*coral.tflite detects \("dog"\), so its AP is undefined'):
            coco_evaluation.evaluate(self.labelled_detector(coco_labels_keeping(("dog",))), image_set)

    def test_a_model_without_detections_of_its_categories_scores_zero(self):
        # Image 42 shows a dog that none of the model's 20 detections is.
        with open(ANNOTATIONS) as annotations:
            dataset = json.load(annotations)
        dataset["images"] = [image for image in dataset["images"] if image["id"] == 42]
        dataset["annotations"] = [box for box in dataset["annotations"] if box["image_id"] == 42]
        scores = coco_evaluation.evaluate(self.labelled_detector(coco_labels_keeping(("dog",))),
                                          coco_evaluation.load_image_set(self.annotations_file(dataset), IMAGES))
        self.assertEqual((scores.ap, scores.ap50, scores.ar, scores.per_class), (0.0, 0.0, 0.0, {"dog": 0.0}))

    def test_two_models_give_progress_and_one_json_line_each(self):
        models = [self.labelled_model(read_lines(COCO_LABELS), "all"),
                  self.labelled_model(coco_labels_keeping(KEPT_LABELS), "kept")]
        result = run_evaluate(f"--model={','.join(models)}", f"--annotations={ANNOTATIONS}", f"--images={IMAGES}",
                              f"--max_images={FEW_IMAGES}", "--per_class")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([line["model"] for line in lines], models)
        for line, categories in zip(lines, (80, len(KEPT_LABELS))):
            self.assertCountEqual(line, ["model", "images", "categories", "AP", "AP50", "AP75", "AR", "per_class"])
            self.assertEqual((line["images"], line["categories"], len(line["per_class"])),
                             (FEW_IMAGES, categories, categories))
            self.assertTrue(0 < line["AP"] <= 1 and 0 < line["AP50"] <= 1, line)
            self.assertRegex(result.stderr, rf"{line['model']}: {FEW_IMAGES}/{FEW_IMAGES} images, [0-9.]+ images/s")

    def test_gates_fail_with_the_figures_and_pass_within_their_bound(self):
        """--min_ap and --reference/--max_ap_drop, as ssd_tflite_accuracy_test runs them."""
        shifted = read_lines(COCO_LABELS)[1:] + ["???"]  # every class named as the next one: a broken build
        broken = self.labelled_model(shifted, "broken")
        common = [f"--annotations={ANNOTATIONS}", f"--images={IMAGES}", f"--max_images={FEW_IMAGES}",
                  f"--labels={COCO_LABELS}"]  # for the reference, which carries no labels
        passed = run_evaluate(f"--model={broken}", f"--reference={CORAL_MODEL}", "--max_ap_drop=1", *common)
        self.assertEqual(passed.returncode, 0, passed.stderr)
        broken_ap, reference_ap = (json.loads(line)["AP"] for line in passed.stdout.splitlines())
        self.assertLess(broken_ap + 0.1, reference_ap)  # the broken build does lose AP
        failed = run_evaluate(f"--model={broken}", f"--reference={CORAL_MODEL}", "--max_ap_drop=0.05", *common)
        self.assertEqual(failed.returncode, 1)
        self.assertEqual(len(failed.stdout.splitlines()), 2)  # the figures, then the verdict
        self.assertIn(f"{broken}: AP {broken_ap:.4f} is {reference_ap - broken_ap:.4f} below the reference "
                      f"{CORAL_MODEL}'s {reference_ap:.4f}, more than --max_ap_drop 0.05", failed.stderr)
        below = run_evaluate(f"--model={CORAL_MODEL}", f"--min_ap={reference_ap + 0.01:.4f}", *common)
        self.assertEqual(below.returncode, 1)
        self.assertIn(f"{CORAL_MODEL}: AP {reference_ap:.4f} is below --min_ap", below.stderr)
        self.assertEqual(run_evaluate(f"--model={CORAL_MODEL}", f"--min_ap={reference_ap - 0.01:.4f}",
                                      *common).returncode, 0)
        lone = run_evaluate(f"--model={CORAL_MODEL}", f"--reference={CORAL_MODEL}", *common)
        self.assertEqual(lone.returncode, 1)
        self.assertIn("--reference and --max_ap_drop go together", lone.stderr)

    def test_bad_annotations_are_refused_listing_what_is_wrong(self):
        with open(ANNOTATIONS) as annotations:
            dataset = json.load(annotations)
        cases = {
            "no such annotations file": None,
            "not JSON: Expecting ',' delimiter: line 1": '{"images": [] "categories": []}',
            'no "images" list; no "categories" list': {"annotations": []},
            '"images" is empty; "categories" is empty': {"images": [], "categories": [], "annotations": []},
            "images[0] has no file_name; images[1].width is -3, not a positive integer": {
                **dataset, "images": [{"id": 1, "width": 2, "height": 2},
                                      {"id": 2, "file_name": "a.jpg", "width": -3, "height": 2}]},
            "annotations[1].id 1 is also annotations[0]'s; annotations[1].category_id 12 is not listed": {
                **dataset, "annotations": [dict(dataset["annotations"][0], id=1),
                                           dict(dataset["annotations"][1], id=1, category_id=12)]},
        }
        for number, (expected, content) in enumerate(cases.items()):
            path = (self.create_tempdir().full_path + "/missing.json" if content is None
                    else self.create_tempfile(f"{number}.json", content if isinstance(content, str)
                                              else json.dumps(content)).full_path)
            with self.subTest(expected):
                with self.assertRaises(InputError) as refused:
                    coco_evaluation.load_image_set(path, IMAGES)
                self.assertIn(path, str(refused.exception))
                self.assertIn(expected.replace("not JSON", "the annotations are not JSON"), str(refused.exception))

    def test_missing_and_mismatched_images_are_refused(self):
        with open(ANNOTATIONS) as annotations:
            dataset = json.load(annotations)
        dataset["images"].sort(key=lambda image: image["id"])
        folder = self.create_tempdir()
        for image in dataset["images"][:2]:
            os.symlink(os.path.join(IMAGES, image["file_name"]), os.path.join(folder.full_path, image["file_name"]))
        with self.assertRaisesRegex(InputError, f"{folder.full_path}: 126 of the 128 images to evaluate .* are not "
                                                f"there: \"{dataset['images'][2]['file_name']}\""):
            coco_evaluation.load_image_set(ANNOTATIONS, folder.full_path)
        dataset["images"][0]["width"] += 1
        image_set = coco_evaluation.load_image_set(self.annotations_file(dataset), IMAGES, 1)
        with self.assertRaisesRegex(InputError, "so the boxes would not line up"):
            coco_evaluation.evaluate(self.labelled_detector(read_lines(COCO_LABELS)), image_set)

    def test_the_tool_reports_bad_input_without_traceback(self):
        result = run_evaluate(f"--model={CORAL_MODEL}", "--annotations=missing.json", f"--images={IMAGES}")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(), "evaluate: error: missing.json: no such annotations file")
        self.assertEqual(result.stdout, "")

    def test_the_tool_refuses_a_model_it_cannot_score_before_running_any(self):
        models = f"--model={self.labelled_model(read_lines(COCO_LABELS))},{CORAL_MODEL}"
        result = run_evaluate(models, f"--annotations={ANNOTATIONS}", f"--images={IMAGES}")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.splitlines(), [
            f"evaluate: error: {CORAL_MODEL}: the model has no labels (no embedded metadata, no "
            f"{CORAL_MODEL[:-len('.tflite')]}_labels.txt) to match {ANNOTATIONS}'s categories by name: write its "
            "class names into that file, one per line in class order"])
        self.assertEqual(result.stdout, "")


if __name__ == "__main__":
    absltest.main()
