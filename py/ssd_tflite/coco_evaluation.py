"""COCO mAP of a detect.tflite model on a COCO-format image set, by COCO's reference evaluator (pycocotools).

The model runs as `detect` and `compare_detections` run it (ssd_tflite.detection):
each image resized to the model's input, bilinear, aspect not kept (the zoo's
fixed_shape_resizer), in the model's input type and normalization, and every
detection it outputs (up to its max_detections) is kept with its score.

Model classes map to COCO categories by label name, the labels coming from the
model's embedded metadata or the `<name>_labels.txt` beside it: so 90-class
zoo models, fine-tunes on a subset of COCO's names and models with their own
annotations all work. `???` and labels that name no category are dropped, and
only the categories the model's labels name are evaluated: a fine-tune on 5
COCO classes is scored on those 5.

Reported, as COCOeval's summary computes them: AP (IoU 0.50:0.95), AP50, AP75
and AR (at most 100 detections per image), over all object sizes; and AP per
category, None for a category without boxes in the evaluated images.
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ssd_tflite import contract, detection, label_map
from ssd_tflite.errors import InputError
from ssd_tflite.images import load_image

PROGRESS_EVERY = 16  # images between two progress lines
_PROBLEMS_SHOWN = 10
_ALL_SCORES = -math.inf  # a threshold that keeps every detection the model outputs


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_integer(value: Any) -> bool:
    return _is_integer(value) and value > 0


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_non_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _is_box(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 4 and all(
        isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)
        for number in value) and value[2] >= 0 and value[3] >= 0)


# What COCOeval reads of each record (bbox evaluation), and what it must be.
_REQUIRED_FIELDS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "images": {
        "id": (_is_integer, "an integer"),
        "file_name": (_is_text, "a file name"),
        "width": (_is_positive_integer, "a positive integer"),
        "height": (_is_positive_integer, "a positive integer"),
    },
    "categories": {
        "id": (_is_integer, "an integer"),
        "name": (_is_text, "a non-empty string"),
    },
    "annotations": {
        "id": (_is_integer, "an integer"),
        "image_id": (_is_integer, "an integer"),
        "category_id": (_is_integer, "an integer"),
        "bbox": (_is_box, "[x, y, width, height] of finite numbers, width and height >= 0"),
        "area": (_is_non_negative, "a finite number >= 0"),
    },
}
_UNIQUE_FIELDS = (("images", "id"), ("categories", "id"), ("categories", "name"), ("annotations", "id"))


def _shape_problems(dataset: Any) -> list[str]:
    """What keeps `dataset` from being COCO instances annotations: missing lists, records and fields."""
    if not isinstance(dataset, dict):
        return ["it is not a JSON object with images, categories and annotations"]
    problems = [f'no "{key}" list' for key in _REQUIRED_FIELDS if not isinstance(dataset.get(key), list)]
    problems += [f'"{key}" is empty' for key in ("images", "categories") if dataset.get(key) == []]
    for key, fields in _REQUIRED_FIELDS.items():
        for index, record in enumerate(dataset.get(key) if isinstance(dataset.get(key), list) else []):
            if not isinstance(record, dict):
                problems.append(f"{key}[{index}] is not an object")
                continue
            for field, (valid, requirement) in fields.items():
                if field not in record:
                    problems.append(f"{key}[{index}] has no {field}")
                elif not valid(record[field]):
                    problems.append(f"{key}[{index}].{field} is {json.dumps(record[field])[:40]}, not {requirement}")
            if key == "annotations" and record.get("iscrowd", 0) not in (0, 1):
                problems.append(f"{key}[{index}].iscrowd is {json.dumps(record['iscrowd'])[:40]}, not 0 or 1")
    return problems


def _consistency_problems(dataset: dict) -> list[str]:
    """Ids and names used twice, and annotations of images or categories that are not listed."""
    problems = []
    for key, field in _UNIQUE_FIELDS:
        first_index: dict[Any, int] = {}
        for index, record in enumerate(dataset[key]):
            value = record[field]
            if value in first_index:
                problems.append(f"{key}[{index}].{field} {json.dumps(value)} is also {key}[{first_index[value]}]'s")
            first_index.setdefault(value, index)
    listed = {"image_id": {image["id"] for image in dataset["images"]},
              "category_id": {category["id"] for category in dataset["categories"]}}
    for index, annotation in enumerate(dataset["annotations"]):
        for field, ids in listed.items():
            if annotation[field] not in ids:
                problems.append(f"annotations[{index}].{field} {annotation[field]} is not listed in "
                                f"\"{'images' if field == 'image_id' else 'categories'}\"")
    return problems


def _summary(items: Sequence[str], separator: str = "; ") -> str:
    """The first few of `items`, and how many more there are."""
    shown = separator.join(items[:_PROBLEMS_SHOWN])
    return shown + (f"{separator}and {len(items) - _PROBLEMS_SHOWN} more" if len(items) > _PROBLEMS_SHOWN else "")


def _names(names: Sequence[str]) -> str:
    return _summary([json.dumps(name) for name in names], ", ")


def _read_annotations(path: str) -> dict:
    """The COCO instances annotations at `path`, checked to hold what COCOeval reads."""
    try:
        with open(path, encoding="utf-8") as annotations_file:
            dataset = json.load(annotations_file)
    except FileNotFoundError:
        raise InputError(f"{path}: no such annotations file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the annotations: {error.strerror}") from None
    except ValueError as error:  # not UTF-8, or not JSON (with its line and column)
        raise InputError(f"{path}: the annotations are not JSON: {error}") from None
    problems = _shape_problems(dataset) or _consistency_problems(dataset)
    if problems:
        raise InputError(f"{path}: not COCO instances annotations (images, categories, annotations): "
                         f"{_summary(problems)}")
    return dataset


@contextlib.contextmanager
def _quiet():
    """pycocotools prints what it does to stdout, where the tools print their results: drop it."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """The images to evaluate on, with their annotations."""
    annotations_path: str
    images_folder: str
    images: tuple[dict, ...]  # the evaluated images' records, by ascending id
    category_ids: dict[str, int]  # by category name
    ground_truth: COCO  # all the annotations, indexed by pycocotools


def load_image_set(annotations_path: str, images_folder: str, max_images: Optional[int] = None) -> ImageSet:
    """The images of the COCO annotations at `annotations_path`, the first `max_images` by id (default: all),
    each checked to be a file in `images_folder`."""
    dataset = _read_annotations(annotations_path)
    images = tuple(sorted(dataset["images"], key=lambda image: image["id"])[:max_images])
    missing = [image["file_name"] for image in images
               if not os.path.isfile(os.path.join(images_folder, image["file_name"]))]
    if missing:
        raise InputError(f"{images_folder}: {len(missing)} of the {len(images)} images to evaluate from "
                         f"{annotations_path} are not there: {_names(missing)}; give the folder that holds them")
    ground_truth = COCO()
    ground_truth.dataset = dataset
    with _quiet():
        ground_truth.createIndex()
    category_ids = {category["name"]: category["id"] for category in dataset["categories"]}
    return ImageSet(annotations_path, images_folder, images, category_ids, ground_truth)


def category_ids_by_class(labels: Sequence[str], image_set: ImageSet, model_path: str) -> dict[int, int]:
    """COCO category id by model class index, for the labels that name a category; InputError if none does,
    or if the images have no box of those categories to score the model on."""
    if not labels:
        raise InputError(f"{model_path}: the model has no labels (no embedded metadata, no "
                         f"{os.path.splitext(model_path)[0]}{contract.LABELS_SUFFIX}) to match {image_set.annotations_path}'s "
                         "categories by name: write its class names into that file, one per line in class order")
    mapping = {index: image_set.category_ids[label] for index, label in enumerate(labels)
               if label != label_map.UNKNOWN_LABEL and label in image_set.category_ids}
    if not mapping:
        raise InputError(f"{model_path}: none of its {len(labels)} labels names a category of "
                         f"{image_set.annotations_path} (names must match exactly, case included): its labels are "
                         f"{_names(labels)}; the categories are {_names(sorted(image_set.category_ids))}")
    boxes = image_set.ground_truth.loadAnns(image_set.ground_truth.getAnnIds(
        imgIds=[image["id"] for image in image_set.images], catIds=list(mapping.values())))
    if all(box.get("iscrowd", 0) for box in boxes):  # COCOeval leaves crowd boxes out
        names = _names([label for index, label in enumerate(labels) if index in mapping])
        raise InputError(f"{image_set.annotations_path}: none of the {len(image_set.images)} images to evaluate "
                         f"has a box of the categories {model_path} detects ({names}), so its AP is undefined: "
                         "evaluate it on images that show them")
    return mapping


@dataclasses.dataclass(frozen=True)
class Scores:
    """COCO metrics of one model on an image set."""
    model: str
    images: int
    categories: int  # evaluated: those the model's labels name
    ap: float  # IoU 0.50:0.95
    ap50: float
    ap75: float
    ar: float  # at most 100 detections per image
    per_class: dict[str, Optional[float]]  # AP by category name; None for a category the images have no box of


def _image(image_set: ImageSet, image: dict) -> Image.Image:
    path = os.path.join(image_set.images_folder, image["file_name"])
    pixels = load_image(path)
    if pixels.size != (image["width"], image["height"]):
        raise InputError(f"{path}: {pixels.width}x{pixels.height} pixels, but {image_set.annotations_path} says "
                         f"{image['width']}x{image['height']}, so the boxes would not line up: is it the image "
                         "the annotations describe?")
    return pixels


def _coco_results(detector: detection.Detector, image_set: ImageSet, category_of_class: dict[int, int],
                  progress: Callable[[str], None]) -> list[dict]:
    """Every detection of the model in the images of a mapped class, as COCO results."""
    results = []
    started = time.monotonic()
    images = (_image(image_set, image) for image in image_set.images)
    found_by_image = detector.detect_many(images, detector.labels, _ALL_SCORES)
    for done, (image, found_in_image) in enumerate(zip(image_set.images, found_by_image), start=1):
        for found in found_in_image:
            if found.class_index in category_of_class:
                ymin, xmin, ymax, xmax = found.box
                results.append({"image_id": image["id"], "category_id": category_of_class[found.class_index],
                                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin], "score": found.score})
        if done % PROGRESS_EVERY == 0 or done == len(image_set.images):
            rate = done / max(time.monotonic() - started, 1e-9)
            progress(f"{detector.model_path}: {done}/{len(image_set.images)} images, {rate:.1f} images/s")
    return results


def _no_detections(ground_truth: COCO) -> COCO:
    """An empty result set (pycocotools' loadRes cannot make one)."""
    empty = COCO()
    empty.dataset = {"images": ground_truth.dataset["images"], "categories": ground_truth.dataset["categories"],
                     "annotations": []}
    empty.createIndex()
    return empty


def _class_ap(evaluation: COCOeval, category_index: int) -> Optional[float]:
    """AP of one category, as COCOeval's summary averages it over IoUs and recalls (all areas, 100 detections)."""
    precision = evaluation.eval["precision"][:, :, category_index, evaluation.params.areaRngLbl.index("all"),
                                             evaluation.params.maxDets.index(100)]
    defined = precision[precision > -1]
    return float(defined.mean()) if defined.size else None


def _scores(model_path: str, image_set: ImageSet, results: list[dict], category_ids: list[int]) -> Scores:
    with _quiet():
        found = image_set.ground_truth.loadRes(results) if results else _no_detections(image_set.ground_truth)
        evaluation = COCOeval(image_set.ground_truth, found, "bbox")
        evaluation.params.imgIds = [image["id"] for image in image_set.images]
        evaluation.params.catIds = category_ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ap, ap50, ap75 = (float(value) for value in evaluation.stats[:3])
    names = {category["id"]: category["name"] for category in image_set.ground_truth.loadCats(category_ids)}
    per_class = {names[category_id]: _class_ap(evaluation, index) for index, category_id in enumerate(category_ids)}
    return Scores(model_path, len(image_set.images), len(category_ids), ap, ap50, ap75,
                  float(evaluation.stats[8]), per_class)


def evaluate(detector: detection.Detector, image_set: ImageSet,
             progress: Callable[[str], None] = lambda line: None) -> Scores:
    """COCO metrics of the model on `image_set`; `progress` gets a line every few images."""
    category_of_class = category_ids_by_class(detector.labels, image_set, detector.model_path)
    results = _coco_results(detector, image_set, category_of_class, progress)
    return _scores(detector.model_path, image_set, results, sorted(set(category_of_class.values())))
