"""Hostile inputs of `detect`, `compare_detections` and calibration end in a UserError naming the file.

Each case is a file made to hurt a reader: zip bombs as a model's packed
labels, PostScript named .jpg, PNG text chunks that expand past Pillow's
limit, truncated and decompression-bomb images, models without the SSD
contract (two inputs, a count output that is not [1]), a model whose memory
grows with the image's pixels, one whose outputs are too large, a run that
does not end in time, and an --output that cannot be written. (Calibration
reads images with the same images.load_image.)
"""

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from typing import Callable
from unittest import mock

import flatbuffers
import numpy as np
from absl.testing import absltest
from ai_edge_litert import schema_py_generated as schema
from PIL import EpsImagePlugin, Image

import testing
from ssd_tflite import bounded_run, detection, flatbuffer_model, tflite_metadata
from ssd_tflite.errors import InputError, UserError
from ssd_tflite.images import IMAGE_FORMATS, load_image

MODEL = testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite")
PHOTO = testing.testdata("chelsea.png")
DETECT = testing.runfile("py/detect.py")
POSTSCRIPT = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
              b"newpath 0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n")


def read(path: str) -> bytes:
    with open(path, "rb") as content:
        return content.read()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(image: Image.Image) -> bytes:
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    return encoded.getvalue()


def with_packed_files(model: bytes, pack: Callable[[zipfile.ZipFile], None]) -> bytes:
    """The model with a zip appended whose files `pack` writes (as tflite_metadata packs the labels)."""
    archive = io.BytesIO(model)
    archive.seek(0, io.SEEK_END)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as packed:
        pack(packed)
    return archive.getvalue()


def pack_repeated(name: str, line: bytes, count: int) -> Callable[[zipfile.ZipFile], None]:
    """Packs `name` holding `line` `count` times, written in chunks (never whole in memory)."""
    def pack(packed: zipfile.ZipFile) -> None:
        with packed.open(name, "w") as member:
            chunk = line * (1 << 16)
            for _ in range(count >> 16):
                member.write(chunk)
            member.write(line * (count & 0xFFFF))
    return pack


def described_model() -> bytes:
    """The test model without its labels zip: our metadata buffer, written by tflite_metadata."""
    metadata = tflite_metadata.DetectorMetadata("hostile", "labels packed by hand", "1", (128.0,) * 3,
                                                (128.0,) * 3, ())
    return flatbuffer_model.with_metadata(testing.without_metadata(MODEL), MODEL, tflite_metadata.METADATA_NAME,
                                          tflite_metadata.metadata_buffer(metadata, 300, 300))


def lying_about_size(archive: bytes, name: bytes, size: int) -> bytes:
    """The zip with the uncompressed size of `name` in its central directory replaced by `size`."""
    entry = archive.rindex(b"PK\x01\x02")  # the central directory entry of the last file packed
    assert archive[entry + 46:entry + 46 + len(name)] == name
    return archive[:entry + 24] + struct.pack("<I", size) + archive[entry + 28:]


class InputsTest(absltest.TestCase):

    def write(self, name: str, content: bytes) -> str:
        return self.create_tempdir().create_file(name, content, mode="wb").full_path

    def assert_names(self, error: UserError, path: str, *fragments: str) -> None:
        self.assertIn(path, str(error))
        for fragment in fragments:
            self.assertIn(fragment, str(error))

    def refused_model(self, content: bytes, *fragments: str) -> None:
        """The model `content` is refused by the metadata reader and by open_detector, naming it."""
        path = self.write("detect.tflite", content)
        for reader in (tflite_metadata.read, detection.open_detector):
            with self.assertRaises(InputError) as raised:
                reader(path)
            self.assert_names(raised.exception, path, *fragments)

    # The labels zip.

    def test_labels_zip_bomb(self):
        size = 64 << 20  # 64 MiB of "a\n" deflate to 64 KB; the reported one was 150 MiB from 153 KB
        self.refused_model(with_packed_files(described_model(), pack_repeated("labels.txt", b"a\n", size >> 1)),
                           "labels.txt declares", str(size), "zip bomb")

    def test_labels_expanding_over_100_times_their_compressed_size(self):
        self.refused_model(with_packed_files(described_model(), pack_repeated("labels.txt", b"???\n", 1 << 19)),
                           "labels.txt declares 2097152 bytes", "100x")

    def test_labels_declaring_fewer_bytes_than_they_expand_to(self):
        archive = with_packed_files(described_model(), pack_repeated("labels.txt", b"???\n", 1 << 19))
        self.refused_model(lying_about_size(archive, b"labels.txt", 1000), "labels.txt", "not packed with it intact")

    def test_too_many_packed_files(self):
        def pack(packed: zipfile.ZipFile) -> None:
            for index in range(100):
                packed.writestr(f"vocabulary_{index}.txt", "a\n")
            packed.writestr("labels.txt", "person\n")

        self.refused_model(with_packed_files(described_model(), pack), "101 files are packed")

    def test_built_models_labels_are_within_the_bounds(self):
        self.assertLen(tflite_metadata.read(MODEL).labels, 90)

    # Images.

    def refused_image(self, name: str, content: bytes, *fragments: str) -> None:
        path = self.write(name, content)
        with self.assertRaises(InputError) as raised:
            load_image(path)
        self.assert_names(raised.exception, path, *fragments)

    def test_model_whose_tables_share_one_large_string(self):
        """2,000 tensors naming one 1 MiB string: 1 MB of file, 2 GB once unpacked by the object API."""
        builder = flatbuffers.Builder(1024)
        name = builder.CreateString("n" * (1 << 20))
        tensors = []
        for _ in range(2000):
            schema.TensorStart(builder)
            schema.TensorAddName(builder, name)
            tensors.append(schema.TensorEnd(builder))
        schema.SubGraphStartTensorsVector(builder, len(tensors))
        for tensor in reversed(tensors):
            builder.PrependUOffsetTRelative(tensor)
        tensor_vector = builder.EndVector()
        schema.SubGraphStart(builder)
        schema.SubGraphAddTensors(builder, tensor_vector)
        subgraph = schema.SubGraphEnd(builder)
        schema.ModelStartSubgraphsVector(builder, 1)
        builder.PrependUOffsetTRelative(subgraph)
        subgraphs = builder.EndVector()
        schema.ModelStart(builder)
        schema.ModelAddSubgraphs(builder, subgraphs)
        builder.Finish(schema.ModelEnd(builder), file_identifier=flatbuffer_model.FILE_IDENTIFIER)
        path = self.create_tempfile("shared.tflite", bytes(builder.Output())).full_path
        with self.assertRaisesRegex(InputError, re.escape(path) + ": reading its .* bytes takes more than 16 times"):
            flatbuffer_model.read(path)

    def test_bad_normalizations_are_refused_naming_the_file(self):
        """mean and std, from a _contract.json or from the embedded metadata: 3 finite numbers, std positive."""
        bad = [([1, 2], [1, 2, 3]), ("abc", [1, 1, 1]), ([[1], 2, 3], [1, 1, 1]), ([128, 128, 128], [0, 0, 0]),
               ([128, 128, 128], [128, float("nan"), 128]), ([], []), ([128, 128, 128], [-1, 128, 128])]
        for mean, std in bad:
            with self.subTest(mean=mean, std=std):
                path = self.create_tempfile("model_contract.json",
                                            json.dumps({"input": {"mean": mean, "std": std}})).full_path
                with self.assertRaisesRegex(InputError, re.escape(path) + ": input: (mean|std) is"):
                    detection.load_normalization(path)
        for mean, std in [([128.0, 128.0], [128.0, 128.0]), ([128.0] * 3, [128.0, float("nan"), 128.0]), ([], [])]:
            with self.subTest(embedded_mean=mean, embedded_std=std):
                metadata = tflite_metadata.DetectorMetadata("m", "d", "1", tuple(mean), tuple(std), ("a",))
                model = flatbuffer_model.with_metadata(testing.without_metadata(MODEL), MODEL,
                                                       tflite_metadata.METADATA_NAME,
                                                       tflite_metadata.metadata_buffer(metadata, 300, 300))
                path = self.create_tempfile("embedded.tflite", model).full_path
                with self.assertRaisesRegex(InputError, re.escape(path) + ": its metadata's NormalizationOptions: "):
                    tflite_metadata.read(path)

    def test_postscript_named_jpg_never_reaches_ghostscript(self):
        with mock.patch.object(EpsImagePlugin, "Ghostscript", side_effect=AssertionError("Ghostscript ran")):
            self.refused_image("photo.jpg", POSTSCRIPT, "not an image", "JPEG, PNG")

    def test_png_with_an_oversized_text_chunk(self):
        photo = read(PHOTO)
        text = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * (2 << 20)))
        self.refused_image("photo.png", photo[:33] + text + photo[33:], "ValueError", "MAX_TEXT_CHUNK")

    def test_truncated_png(self):
        photo = read(PHOTO)
        self.refused_image("photo.png", photo[:len(photo) // 2], "damaged", "truncated")

    def test_decompression_bombs(self):
        # 100 megapixels: Pillow only warns (and decodes 300 MB of RGB); 200: Pillow refuses.
        for width in (10000, 20000):
            with self.subTest(width=width):
                self.refused_image("photo.png", png(Image.new("1", (width, 10000))), "too large", "scale it down")

    def test_every_supported_format_loads(self):
        photo = Image.open(PHOTO).convert("RGB")
        for image_format in IMAGE_FORMATS:
            with self.subTest(image_format=image_format):
                encoded = io.BytesIO()
                (photo.convert("P") if image_format == "GIF" else photo).save(encoded, format=image_format)
                loaded = load_image(self.write("photo", encoded.getvalue()))
                self.assertEqual((loaded.mode, loaded.size), ("RGB", photo.size))

    # Models without the SSD contract.

    def crafted_model(self, edit: Callable[[schema.SubGraphT], None]) -> str:
        """The test model (without metadata) after `edit` changed its first subgraph."""
        model = flatbuffer_model.load(testing.without_metadata(MODEL), MODEL)
        edit(model.subgraphs[0])
        return self.write("crafted.tflite", flatbuffer_model.pack(model))

    def refused_detection(self, path: str, *fragments: str) -> None:
        image = load_image(PHOTO)
        with self.assertRaises(InputError) as raised:
            detection.open_detector(path).detect(image, [], 0.0)
        self.assert_names(raised.exception, path, *fragments)

    def test_model_with_two_inputs(self):
        def second_input(subgraph: schema.SubGraphT) -> None:
            subgraph.tensors.append(subgraph.tensors[subgraph.inputs[0]])
            subgraph.inputs = [*subgraph.inputs, len(subgraph.tensors) - 1]

        self.refused_detection(self.crafted_model(second_input), "2 input(s)", "takes one image")

    def test_model_with_an_input_that_is_no_image(self):
        def shape(new_shape: list[int]) -> Callable[[schema.SubGraphT], None]:
            def edit(subgraph: schema.SubGraphT) -> None:
                subgraph.tensors[subgraph.inputs[0]].shape = np.array(new_shape, np.int32)
            return edit

        for new_shape in ([1, 300, 300], [1, 300, 300, 4], [1, 100000, 300, 3]):
            with self.subTest(shape=new_shape):
                self.refused_detection(self.crafted_model(shape(new_shape)), f"its input is {new_shape}")

    def test_model_whose_count_output_is_not_a_scalar(self):
        def scores_as_count(subgraph: schema.SubGraphT) -> None:
            subgraph.outputs = [*subgraph.outputs[:3], subgraph.outputs[2]]

        self.refused_detection(self.crafted_model(scores_as_count), "count output is [1, 10]", "expected [1]")

    def converted(self, function: object) -> str:
        """A .tflite of the tf.function `function`, converted by TensorFlow."""
        import tensorflow as tf  # noqa: PLC0415  (only these cases need it)

        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
        return self.write("converted.tflite", converter.convert())

    def test_model_whose_memory_grows_with_the_pixels(self):
        """Within the bound on a black image; on a white one, it runs under the same bound, not unbounded."""
        import tensorflow as tf  # noqa: PLC0415

        @tf.function(input_signature=[tf.TensorSpec([1, 300, 300, 3], tf.float32)])
        def hostile(image: tf.Tensor) -> tuple[tf.Tensor, ...]:
            blocks = tf.maximum(tf.cast(tf.reduce_max(image) * 8.0, tf.int32), 0)  # black: 0, white: 7
            total = tf.reduce_sum(tf.fill(tf.stack([blocks, 1 << 26]), 1.0))  # 256 MiB per block
            return tf.zeros([1, 10, 4]) + total, tf.zeros([1, 10]), tf.zeros([1, 10]), tf.zeros([1])

        path = self.converted(hostile)
        with mock.patch.object(bounded_run, "MEMORY_BYTES", 1 << 30):
            detector = detection.Detector(path)
            self.assertEqual(detector.detect(Image.new("RGB", (300, 300)), [], 0.0), [])
            with self.assertRaises(InputError) as raised:
                detector.detect(Image.new("RGB", (300, 300), "white"), [], 0.0)
        self.assert_names(raised.exception, path, "FILL", "1 GiB")

    def test_model_with_outputs_over_the_bound(self):
        import tensorflow as tf  # noqa: PLC0415

        @tf.function(input_signature=[tf.TensorSpec([1, 300, 300, 3], tf.float32)])
        def hostile(image: tf.Tensor) -> tuple[tf.Tensor, ...]:  # 2.4 MB of outputs
            boxes = tf.zeros([1, 100000, 4]) + image[0, 0, 0, 0]
            return boxes, tf.zeros([1, 100000]), tf.zeros([1, 100000]), tf.zeros([1])

        self.refused_detection(self.converted(hostile), "File too large", f"{bounded_run.OUTPUT_BYTES} bytes")

    def test_run_that_does_not_end_in_time(self):
        run = subprocess.run

        def impatient(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
            return run(*args, **{**kwargs, "timeout": 0.01})

        with mock.patch.object(subprocess, "run", impatient):
            self.refused_detection(MODEL, "did not finish")

    def test_built_model_runs_within_the_bounds(self):
        detector = detection.open_detector(MODEL)
        found = detector.detect(load_image(PHOTO), detector.labels, 0.0)
        self.assertLen(found, 10)
        self.assertContainsSubset({item.label for item in found}, detector.labels)

    # detect's --output.

    def test_unwritable_output(self):
        folder = self.create_tempdir()
        a_file = folder.create_file("taken.txt").full_path
        for output in (folder.full_path, os.path.join(a_file, "annotated.png")):
            with self.subTest(output=output):
                result = subprocess.run([sys.executable, DETECT, f"--model={MODEL}", f"--image={PHOTO}",
                                         f"--output={output}"], capture_output=True, text=True, timeout=600,
                                        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertNotIn("Traceback", result.stderr)
                self.assertIn(f"detect: error: {output}: cannot write the annotated image", result.stderr)
                self.assertIn("give --output a file name in a folder you can write to", result.stderr)
        self.assertEqual(os.listdir(folder.full_path), ["taken.txt"])


if __name__ == "__main__":
    absltest.main()
