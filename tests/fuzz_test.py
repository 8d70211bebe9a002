"""Property-based fuzzing of everything the tools read from users, with hypothesis.

Each case must end in a correct result or one of our named errors (a
UserError subclass, which the command-line tools print as one line) and must
write nothing half-done: never another exception, which would be a
traceback. Inputs, mutated by hypothesis:
  - pipeline.config text: numbers changed, lines removed or repeated, enum
    values and identifiers replaced, garbage inserted; parsed, and exported
    against a real checkpoint (then the output folder is empty or complete);
  - every numeric field of the config schema (found from its descriptors) set
    to edge values (0, -1, nan, +-inf, 1e30, tiny positives, huge integers):
    each field at each edge, then drawn combinations; parsed, and exported;
  - checkpoints: index or data truncated, bytes flipped, a variable stored
    with another dtype or shape;
  - images for `detect` and calibration: truncated, garbage, other modes,
    huge dimensions;
  - .tflite models for `detect`: truncated or with bytes flipped;
  - persistent-worker input: streams of WorkRequest frames with drawn
    arguments, garbage frames, truncated frames, oversized and endless length
    varints, given to a real tool running as a worker.
FUZZ_EXAMPLES sets the examples per target: 50 in the quick suite, 200 in CI
(--config=ci); a long run is made by hand with a larger number (docs/reliability.md, docs/figures.md).
"""

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from absl.testing import absltest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import testing
from fuzzing import EXAMPLES, FUZZ, OUTCOMES, outcome
from ssd_tflite import checkpoint_files, detection, export, persistent_worker, pipeline_config
from ssd_tflite.checkpoint import CheckpointSource
from ssd_tflite.errors import ConfigError, UserError
from ssd_tflite.images import load_image

# Exports build a whole graph: fewer of them.
EXPORT_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 10, 5))
# Each worker stream starts a tool's process.
WORKER_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 5, 5))
# The worker of the fuzzed streams: the metadata tool, which starts without TensorFlow.
WORKER_TOOL = "py/populate_metadata.py"
CONFIG = "ssdlite_mobilenet_v2_zoo.pipeline.config"
RESNET_CONFIG = "ssd_resnet50_v1_fpn_finetune_11class.pipeline.config"
CHECKPOINT = "models/ssdlite_mobilenet_v2_coco_synthetic/model.ckpt"
MODEL = "models/ssd_mobilenet_v1_quant_tflite.tflite"
PHOTO = "chelsea.png"


def read(path: str) -> bytes:
    with open(path, "rb") as content:
        return content.read()


NUMBER = re.compile(r"(?<=: )-?\d+(\.\d+)?(e-?\d+)?")
WORD = re.compile(r"(?<=: )[A-Z_][A-Z_0-9]*$|(?<=: )\"[^\"]*\"", re.M)


@st.composite
def mutated_config(draw) -> str:
    lines = read(testing.testdata(CONFIG)).decode().splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["number", "word", "remove", "repeat", "garbage"]))
        if kind == "number" and NUMBER.search(lines[index]):
            value = draw(st.one_of(st.integers(-10**6, 10**6).map(str),
                                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                   st.sampled_from(["0", "-1", "1e40", "3.5", "nan", "inf"])))
            lines[index] = NUMBER.sub(value, lines[index], count=1)
        elif kind == "word" and WORD.search(lines[index]):
            lines[index] = WORD.sub(draw(st.sampled_from(["RELU", "NONE", "SOFTMAX", "BOGUS", '"x"', "1"])),
                                    lines[index], count=1)
        elif kind == "remove":
            del lines[index]
        elif kind == "repeat":
            lines.insert(index, lines[index])
        else:
            lines.insert(index, draw(st.text(max_size=20)))
    return "\n".join(lines)


NUMERIC_FIELDS = list(testing.numeric_fields())
# The blocks only one base config reads: the ResNet FPN's, or SSDLite's (whose checkpoint the export has).
_BLOCKS_OF = {RESNET_CONFIG: {"fpn", "multiscale_anchor_generator", "weight_shared_convolutional_box_predictor"},
              CONFIG: {"ssd_anchor_generator", "convolutional_box_predictor"}}


def _fields_read(base: str) -> list[str]:
    others = set().union(*(blocks for other, blocks in _BLOCKS_OF.items() if other != base))
    return [path for path in NUMERIC_FIELDS if not others & set(path.split("."))]


FIELDS_READ = {base: _fields_read(base) for base in _BLOCKS_OF}
NUMERIC_EDGES = ("0", "-0.0", "-1", "nan", "inf", "-inf", "1e30", "-1e30", "1e-45", "1e-30", "1e-7",
                 str(2 ** 31 - 1), str(-2 ** 31), str(2 ** 31), str(10 ** 18))
NOT_FINITE = ("nan", "inf", "-inf")
ORDINARY = ("0.5", "1", "3", "300")  # in range for many fields, so that drawn configs also pass and export


def numeric_override(settings: list[tuple[str, str]]) -> str:
    """Text (as for --config_override) setting each field path to its value."""
    lines = []
    for path, value in settings:
        *parents, leaf = path.split(".")
        lines.append("".join(f"{parent} {{ " for parent in parents) + f"{leaf}: {value}" + " }" * len(parents))
    return "\n".join(lines)


def numeric_settings(base: str, values: st.SearchStrategy = st.sampled_from(NUMERIC_EDGES + ORDINARY)
                     ) -> st.SearchStrategy:
    """1 to 3 numeric fields the base config reads, each set to a drawn value."""
    return st.lists(st.tuples(st.sampled_from(FIELDS_READ[base]), values), min_size=1, max_size=3)


@st.composite
def numeric_config(draw) -> tuple[str, str]:
    """(base config, override) with edge values, integers or floats of any size in a few numeric fields."""
    base = draw(st.sampled_from(sorted(FIELDS_READ)))
    values = st.one_of(st.sampled_from(NUMERIC_EDGES + ORDINARY), st.integers(-2 ** 40, 2 ** 40).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr))
    return base, numeric_override(draw(numeric_settings(base, values)))


def claiming_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR says width x height (with a valid checksum)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(png[24:29])
    png[12:29] = header
    png[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(png)


class FuzzTest(absltest.TestCase):

    @classmethod
    def tearDownClass(cls):
        print("fuzz outcomes:", dict(sorted(OUTCOMES.items())))
        super().tearDownClass()

    @FUZZ
    @given(mutated_config())
    def test_config_text(self, text):
        outcome("config", lambda: pipeline_config.parse(text))

    @EXPORT_FUZZ
    @given(mutated_config())
    def test_export_of_a_mutated_config(self, text):
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        config = os.path.join(work, "pipeline.config")
        with open(config, "w") as out:
            out.write(text)
        output = os.path.join(work, "out")
        result = outcome("export", lambda: export.export_tflite_graph(
            config, testing.runfile(CHECKPOINT), output, write_pbtxt=False))
        written = sorted(os.listdir(output)) if os.path.exists(output) else []
        self.assertIn(written, ([], [] if isinstance(result, UserError) else [export.GRAPH_FILE]))
        shutil.rmtree(work)

    def test_every_numeric_field_at_every_edge(self):
        for base, fields in sorted(FIELDS_READ.items()):
            text = read(testing.testdata(base)).decode()
            for path in fields:
                for value in NUMERIC_EDGES:
                    result = outcome("config_numeric sweep", lambda: pipeline_config.parse(
                        text, base, numeric_override([(path, value)])))
                    if value in NOT_FINITE:
                        self.assertIsInstance(result, ConfigError, (path, value))
                        self.assertIn(path.rsplit(".", 1)[-1], str(result))

    @FUZZ
    @given(numeric_config())
    def test_numeric_config(self, base_and_override):
        base, override = base_and_override
        text = read(testing.testdata(base)).decode()
        outcome("config_numeric", lambda: pipeline_config.parse(text, base, override))

    @EXPORT_FUZZ
    @given(numeric_settings(CONFIG))
    def test_export_of_numeric_edges(self, numeric):
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        output = os.path.join(work, "out")
        result = outcome("config_numeric export", lambda: export.export_tflite_graph(
            testing.testdata(CONFIG), testing.runfile(CHECKPOINT), output, write_pbtxt=False,
            config_override=numeric_override(numeric)))
        written = sorted(os.listdir(output)) if os.path.exists(output) else []
        self.assertIn(written, ([], [] if isinstance(result, UserError) else [export.GRAPH_FILE]))
        shutil.rmtree(work)

    @FUZZ
    @given(st.sampled_from(["index", "data"]), st.data())
    def test_damaged_checkpoint(self, part, data):
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        prefix = os.path.join(work, "model.ckpt")
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copyfile(testing.runfile(CHECKPOINT + suffix), prefix + suffix)
        target = prefix + (".index" if part == "index" else ".data-00000-of-00001")
        content = bytearray(read(target))
        if data.draw(st.booleans()):
            content = content[:data.draw(st.integers(0, len(content) - 1))]
        else:
            for _ in range(data.draw(st.integers(1, 8))):
                content[data.draw(st.integers(0, len(content) - 1))] ^= data.draw(st.integers(1, 255))
        with open(target, "wb") as out:
            out.write(content)
        spec = pipeline_config.read(testing.testdata(CONFIG))

        def export_checkpoint():
            export.build_graph(spec, CheckpointSource(prefix, spec.use_moving_averages), None)

        outcome("checkpoint", export_checkpoint)
        shutil.rmtree(work)

    @FUZZ
    @given(st.sampled_from(["float64", "int32", "shape"]), st.integers(0, 10**6))
    def test_variable_of_another_dtype_or_shape(self, change, pick):
        reader = CheckpointSource(testing.runfile(CHECKPOINT), False)._reader  # noqa: SLF001 (test of the reader)
        values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
        name = sorted(values)[pick % len(values)]
        if change == "shape":
            values[name] = np.zeros(values[name].shape + (2,), np.float32)
        else:
            values[name] = values[name].astype(change)
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        checkpoint_files.write_checkpoint(os.path.join(work, "model.ckpt"), values)
        spec = pipeline_config.read(testing.testdata(CONFIG))
        source = CheckpointSource(os.path.join(work, "model.ckpt"), spec.use_moving_averages)

        def export_checkpoint():
            export.build_graph(spec, source, None)
            source.verify(CONFIG)

        result = outcome("checkpoint dtype/shape", export_checkpoint)
        if name != "global_step":  # not a model variable: ignored, rightly
            self.assertIsInstance(result, UserError, name)
            self.assertIn(name, str(result))
        shutil.rmtree(work)

    @FUZZ
    @given(st.data())
    def test_damaged_or_odd_image(self, data):
        kind = data.draw(st.sampled_from(["truncated", "flipped", "garbage", "mode", "huge"]))
        original = read(testing.testdata(PHOTO))
        if kind == "truncated":
            content = original[:data.draw(st.integers(0, len(original) - 1))]
        elif kind == "flipped":
            content = bytearray(original)
            for _ in range(data.draw(st.integers(1, 16))):
                content[data.draw(st.integers(0, len(content) - 1))] ^= 0xFF
            content = bytes(content)
        elif kind == "garbage":
            content = data.draw(st.binary(max_size=2000))
        elif kind == "mode":
            mode = data.draw(st.sampled_from(["1", "L", "P", "RGBA", "CMYK", "I", "F", "LA", "I;16"]))
            buffer = io.BytesIO()
            Image.new(mode, (data.draw(st.integers(1, 64)), data.draw(st.integers(1, 64)))).save(
                buffer, format="JPEG" if mode == "CMYK" else ("TIFF" if mode in ("I", "F") else "PNG"))
            content = buffer.getvalue()
        else:  # a small PNG whose header claims a vast picture
            content = claiming_size(data.draw(st.integers(5000, 100000)), data.draw(st.integers(5000, 100000)))
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        path = os.path.join(work, "photo")
        with open(path, "wb") as out:
            out.write(content)
        image = outcome("image", lambda: load_image(path))
        if isinstance(image, Image.Image):
            self.assertEqual(image.mode, "RGB")
            detector = detection.open_detector(testing.runfile(MODEL))
            found = detector.detect(image, detector.labels, 0.0)
            self.assertLessEqual(len(found), 10)
        shutil.rmtree(work)

    @FUZZ
    @given(st.data())
    def test_damaged_model_for_detect(self, data):
        original = bytearray(read(testing.runfile(MODEL)))
        if data.draw(st.booleans()):
            content = original[:data.draw(st.integers(0, len(original) - 1))]
        else:
            content = original
            # Flip bytes in the flatbuffer's tables (its first and last 64 KiB), where structure lives.
            for _ in range(data.draw(st.integers(1, 8))):
                position = data.draw(st.one_of(st.integers(0, 65535), st.integers(len(content) - 65536,
                                                                                  len(content) - 1)))
                content[position] ^= data.draw(st.integers(1, 255))
        work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        path = os.path.join(work, "detect.tflite")
        with open(path, "wb") as out:
            out.write(content)
        image = load_image(testing.testdata(PHOTO))

        def run_detect():
            detector = detection.open_detector(path)
            return detector.detect(image, detector.labels, 0.0)

        outcome("tflite", run_detect)
        shutil.rmtree(work)


    @WORKER_FUZZ
    @given(st.lists(st.one_of(
        st.lists(st.text(max_size=40) | st.sampled_from(["--help", "--helpfull", "'", "@x", "--input_file=\n@y"]),
                 max_size=4).map(lambda words: ("request", words)),
        st.binary(max_size=64).map(lambda data: ("frame", data)),
        st.binary(min_size=1, max_size=64).map(lambda data: ("truncated", data)),
        st.sampled_from([("raw", b"\xff" * 11), ("raw", b"\xff\xff\xff\xff\x7f"), ("raw", b"\x80")]),
        st.binary(max_size=16).map(lambda data: ("raw", data)),
    ), max_size=5))
    def test_worker_stream(self, parts):
        stream = bytearray()
        for kind, value in parts:
            if kind == "request":
                frame = persistent_worker.WorkRequest(arguments=value, request_id=len(stream)).SerializeToString()
            else:
                frame = value
            if kind == "raw":
                stream += frame
            elif kind == "truncated":  # its length counts one byte more than follows
                stream += persistent_worker.length_prefix(len(frame) + 1) + frame
            else:
                stream += persistent_worker.length_prefix(len(frame)) + frame
        worker = subprocess.run([sys.executable, testing.runfile(WORKER_TOOL), "--persistent_worker"],
                                input=bytes(stream), capture_output=True, timeout=120)
        self.assertIn(worker.returncode, (0, 1), worker.stderr.decode(errors="replace"))
        self.assertNotIn(b"Traceback", worker.stderr)
        responses, answers = io.BytesIO(worker.stdout), 0
        while persistent_worker.read_delimited(responses, persistent_worker.WorkResponse) is not None:
            answers += 1
        self.assertLessEqual(answers, len(parts))
        if worker.returncode:
            self.assertIn(b"error: persistent worker input:", worker.stderr)
        OUTCOMES["worker stream", "ok" if worker.returncode == 0 else "ProtocolError"] += 1


if __name__ == "__main__":
    absltest.main()
