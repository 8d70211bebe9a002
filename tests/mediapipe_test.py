"""Every model in MediaPipe Tasks' ObjectDetector, the maintained detector API, against LiteRT.

The embedded TFLite Model Metadata is parsed with MediaPipe's own generated
reader of metadata_schema.fbs (not ours), and must describe the model: the
input's normalization as in `<name>_contract.json`, the four outputs by the
names MediaPipe looks for, boxes as [ymin, xmin, ymax, xmax] ratios, and the
labels packed as TENSOR_VALUE_LABELS, one per class.

MediaPipe must then find what `detect` (LiteRT) finds on the test photos:
the same labels and scores, and boxes that agree to MediaPipe's integer
pixels: its origin is LiteRT's clamped at 0 and its size LiteRT's unclipped
size, both truncated, so each lies less than one pixel below LiteRT's.
Photos are given at the model's input size, so that the two resizes
(MediaPipe's and Pillow's bilinear) do not differ.
"""

import json
import zipfile

import mediapipe as mp
import numpy as np
from absl.testing import absltest, parameterized
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_schema
from mediapipe.tasks.python import vision

import testing
from ssd_tflite import detection, tflite_metadata
from ssd_tflite.images import load_image

TARGETS = tuple(testing.models())
PHOTOS = ("chelsea.png", "coffee.png")


def model(target: str) -> str:
    return testing.model_file(target)


def model_contract(target: str) -> dict:
    with open(testing.model_file(target, "contract")) as metadata_file:
        return json.load(metadata_file)


class MediaPipeTest(parameterized.TestCase):

    @parameterized.parameters(*TARGETS)
    def test_metadata_parses_with_mediapipes_reader_and_describes_the_model(self, target):
        with open(model(target), "rb") as model_file:
            content = model_file.read()
        buffer = tflite_metadata.embedded_buffer(content)
        self.assertIsNotNone(buffer)
        self.assertTrue(metadata_schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0))
        metadata = metadata_schema.ModelMetadataT.InitFromObj(metadata_schema.ModelMetadata.GetRootAs(buffer, 0))
        self.assertEqual(metadata.name.decode(), target)
        self.assertIn(b"Synthetic checkpoint", metadata.description)
        (subgraph,) = metadata.subgraphMetadata
        (image,) = subgraph.inputTensorMetadata
        expected = model_contract(target)["input"]
        self.assertEqual(image.content.contentPropertiesType, metadata_schema.ContentProperties.ImageProperties)
        self.assertEqual(image.content.contentProperties.colorSpace, metadata_schema.ColorSpaceType.RGB)
        (unit,) = image.processUnits
        self.assertEqual(unit.optionsType, metadata_schema.ProcessUnitOptions.NormalizationOptions)
        np.testing.assert_array_equal(unit.options.mean, expected["mean"])
        np.testing.assert_array_equal(unit.options.std, expected["std"])

        self.assertEqual([tensor.name.decode() for tensor in subgraph.outputTensorMetadata],
                         ["location", "category", "score", "number of detections"])
        location, category, _, _ = subgraph.outputTensorMetadata
        box = location.content.contentProperties
        self.assertEqual(location.content.contentPropertiesType,
                         metadata_schema.ContentProperties.BoundingBoxProperties)
        self.assertEqual(list(box.index), [1, 0, 3, 2])  # left, top, right, bottom of [ymin, xmin, ymax, xmax]
        self.assertEqual((box.type, box.coordinateType),
                         (metadata_schema.BoundingBoxType.BOUNDARIES, metadata_schema.CoordinateType.RATIO))
        (labels,) = category.associatedFiles
        self.assertEqual((labels.name.decode(), labels.type),
                         ("labels.txt", metadata_schema.AssociatedFileType.TENSOR_VALUE_LABELS))
        with zipfile.ZipFile(model(target)) as packed:
            (entry,) = packed.infolist()
            names = packed.read("labels.txt").decode().splitlines()
        self.assertEqual(entry.date_time, (1980, 1, 1, 0, 0, 0))  # reproducible bytes
        self.assertLen(names, model_contract(target)["num_classes"])
        with open(testing.runfile(f"models/{target}_labels.txt")) as labels_file:
            self.assertEqual(names, labels_file.read().splitlines())

    @parameterized.product(target=TARGETS, photo=PHOTOS)
    def test_mediapipe_finds_what_litert_finds(self, target, photo):
        litert = detection.open_detector(model(target))
        picture = load_image(testing.testdata(photo)).resize((litert.width, litert.height),
                                                                        detection.Image.BILINEAR)
        boxes, classes, scores, count = litert.raw_outputs(litert.input_tensor(picture))
        size = np.array([litert.height, litert.width, litert.height, litert.width], np.float32)
        expected = [(litert.labels[int(classes[0, index])], float(scores[0, index]), boxes[0, index] * size)
                    for index in range(int(count[0]))]
        options = vision.ObjectDetectorOptions(base_options=mp_tasks.BaseOptions(model_asset_path=model(target)),
                                               score_threshold=0.0, max_results=-1)
        with vision.ObjectDetector.create_from_options(options) as detector:
            result = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.asarray(picture)))
        # MediaPipe merges detections with identical boxes into one with several categories.
        found = [(category.category_name, category.score, detection_.bounding_box)
                 for detection_ in result.detections for category in detection_.categories]
        self.assertLen(found, len(expected))
        for label, score, (ymin, xmin, ymax, xmax) in expected:
            matches = [item for item in found if item[0] == label and abs(item[1] - score) < 1e-6
                       and self.same_box(item[2], xmin, ymin, xmax - xmin, ymax - ymin)]
            self.assertNotEmpty(matches, f"{label} {score:.4f} at {ymin:.1f},{xmin:.1f},{ymax:.1f},{xmax:.1f}: "
                                         f"not among {found}")
            found.remove(matches[0])

    @staticmethod
    def same_box(box, x: float, y: float, width: float, height: float) -> bool:
        """MediaPipe's integer box of LiteRT's: origin clamped at 0, size unclipped, both truncated."""
        return all(0 <= real - integer < 1 for integer, real in ((box.origin_x, max(x, 0.0)), (box.origin_y, max(y, 0.0)),
                                                                 (box.width, width), (box.height, height)))


if __name__ == "__main__":
    absltest.main()
