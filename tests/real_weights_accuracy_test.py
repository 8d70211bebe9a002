"""COCO mAP of builds of real weights on real images, each bounded by a measured reference.

The weights are the zoo's SSD MobileNet v2 quantized COCO model as Coral
converted it (testdata/real_models); the images are coco128 (testdata/coco128,
see its SOURCES.md), scored by ssd_tflite.coco_evaluation (what //cli:evaluate
runs) with the labels of models/coco_labels.txt. The builds, made by our tools
with the flags `tflite_to_checkpoint` prints:
  - round trip: the rebuilt checkpoint, exported and converted QUANTIZED_UINT8;
  - float: `tflite_to_checkpoint --float`, exported and converted FLOAT;
  - default-range uint8: that float graph, QUANTIZED_UINT8 with the classic
    recipe's default ranges 0..255;
  - calibrated uint8: the float checkpoint exported with --calibration_images
    (the last 32 coco128 images by id), converted QUANTIZED_UINT8.
Each AP is bounded against the original model's or the float build's, both
measured here on the same images; the calibrated build is evaluated on the
first 96 images only, which it was not calibrated on. The figures are printed
as a table (docs/figures.md quotes them).
"""

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf
from absl.testing import absltest

import testing
from ssd_tflite import checkpoint_files, coco_evaluation, detection, export, pipeline_config

ORIGINAL_MODEL = testing.testdata("real_models/ssd_mobilenet_v2_quant_coco_coral.tflite")
CONFIG = testing.testdata("ssd_mobilenet_v2_quantized_zoo.pipeline.config")
ANNOTATIONS = testing.testdata("coco128/instances.json")
IMAGES = testing.testdata("coco128/images")
COCO_LABELS = testing.runfile("models/coco_labels.txt")
EVALUATED_IMAGES = 96  # the first ones by id, for the calibrated build
CALIBRATION_IMAGES = 32  # the last ones by id: disjoint from the evaluated
MAX_FLOAT_AP_DROP = 0.01
MAX_CALIBRATED_AP_DROP = 0.02
MAX_DEFAULT_RANGE_AP = 0.05
CONVERTER_IO_FLAGS = ("--input_shapes=1,300,300,3", "--input_arrays=normalized_input_image_tensor",
                      "--output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,"
                      "TFLite_Detection_PostProcess:2,TFLite_Detection_PostProcess:3")
# The classic recipe for a float graph: uint8 input as pixels, ranges 0..255 where the graph has none.
DEFAULT_RANGE_FLAGS = ("--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
                       "--default_ranges_min=0", "--default_ranges_max=255", "--allow_custom_ops")
CALIBRATED_FLAGS = ("--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
                    "--allow_custom_ops")


def tool(name: str) -> list[str]:
    """The command of //cli:`name`: its launcher in the runfiles, else py/`name`.py on this interpreter."""
    launcher = testing.runfile(f"cli/{name}")
    return [launcher] if os.path.exists(launcher) else [sys.executable, testing.runfile(f"py/{name}.py")]


def run_tool(name: str, *args: str) -> str:
    """Runs the tool and returns its stdout; fails the test with its stderr if it fails."""
    result = subprocess.run([*tool(name), *args], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"{name} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def work_folder() -> str:
    return tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))


@dataclasses.dataclass(frozen=True)
class Recovered:
    """A `tflite_to_checkpoint` output folder and the flags it printed."""
    folder: str
    export_flags: tuple[str, ...]
    converter_flags: tuple[str, ...]


def printed_flags(stdout: str, tool_name: str) -> tuple[str, ...]:
    prefix = f"{tool_name} flags: "
    lines = [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]
    if len(lines) != 1:
        raise AssertionError(f"tflite_to_checkpoint printed no single '{prefix}' line:\n{stdout}")
    return tuple(lines[0].split())


@functools.cache
def recovered(float_model: bool) -> Recovered:
    folder = os.path.join(work_folder(), "recovered")
    stdout = run_tool("tflite_to_checkpoint", f"--tflite_file={ORIGINAL_MODEL}", f"--pipeline_config_path={CONFIG}",
                      f"--output_directory={folder}", *(["--float"] if float_model else []))
    return Recovered(folder, printed_flags(stdout, "export_tflite_ssd_graph"), printed_flags(stdout, "toco"))


def exported(source: Recovered, *extra_flags: str) -> str:
    """The frozen graph our export makes of a recovered checkpoint, with the printed flags."""
    output = os.path.join(work_folder(), "export")
    run_tool("export_tflite_ssd_graph", f"--pipeline_config_path={os.path.join(source.folder, 'pipeline.config')}",
             f"--trained_checkpoint_prefix={os.path.join(source.folder, checkpoint_files.PREFIX)}",
             f"--output_directory={output}", "--nowrite_pbtxt", *source.export_flags, *extra_flags)
    return os.path.join(output, export.GRAPH_FILE)


def converted(graph: str, build: str, converter_flags: tuple[str, ...]) -> str:
    """`build`.tflite converted by our converter, with the COCO labels beside it as its labels file."""
    folder = work_folder()
    model = os.path.join(folder, f"{build}.tflite")
    run_tool("toco", f"--input_file={graph}", f"--output_file={model}", *CONVERTER_IO_FLAGS, *converter_flags)
    shutil.copyfile(COCO_LABELS, os.path.join(folder, f"{build}_labels.txt"))
    return model


def original_model() -> str:
    """The Coral model, in a folder with the COCO labels beside it (it has no metadata)."""
    folder = work_folder()
    model = os.path.join(folder, "original.tflite")
    os.symlink(ORIGINAL_MODEL, model)
    shutil.copyfile(COCO_LABELS, os.path.join(folder, "original_labels.txt"))
    return model


@functools.cache
def image_set(max_images: int | None) -> coco_evaluation.ImageSet:
    return coco_evaluation.load_image_set(ANNOTATIONS, IMAGES, max_images)


def calibration_images() -> list[str]:
    """The last CALIBRATION_IMAGES of coco128 by id: none of the first EVALUATED_IMAGES."""
    return [os.path.join(IMAGES, image["file_name"]) for image in image_set(None).images[-CALIBRATION_IMAGES:]]


# build -> how the .tflite is made
BUILDS = {
    "original": original_model,
    "round trip": lambda: converted(exported(recovered(False)), "round_trip", recovered(False).converter_flags),
    "float": lambda: converted(float_graph(), "float", recovered(True).converter_flags),
    "default-range uint8": lambda: converted(float_graph(), "default_range_uint8", DEFAULT_RANGE_FLAGS),
    "calibrated uint8": lambda: converted(
        exported(recovered(True), f"--calibration_images={','.join(calibration_images())}"), "calibrated_uint8",
        CALIBRATED_FLAGS),
}


@functools.cache
def float_graph() -> str:
    return exported(recovered(True))


@functools.cache
def model(build: str) -> str:
    return BUILDS[build]()


MEASURED: dict[tuple[str, int], coco_evaluation.Scores] = {}


def scores(build: str, max_images: int | None = None) -> coco_evaluation.Scores:
    """COCO metrics of the build on the first `max_images` of coco128 by id (default: all), measured once."""
    key = (build, max_images or len(image_set(None).images))
    if key not in MEASURED:
        MEASURED[key] = coco_evaluation.evaluate(detection.open_detector(model(build)), image_set(max_images))
    return MEASURED[key]


def table() -> str:
    """The measured scores as a Markdown table: all images first, builds in BUILDS order."""
    lines = ["| model | build | images | AP | AP50 |", "|---|---|---|---|---|"]
    for build, images in sorted(MEASURED, key=lambda key: (-key[1], list(BUILDS).index(key[0]))):
        measured = MEASURED[build, images]
        lines.append(f"| SSD MobileNet v2 quantized COCO (Coral) | {build} | {images} | {measured.ap:.3f} | "
                     f"{measured.ap50:.3f} |")
    return "\n".join(lines)


class RealWeightsAccuracyTest(absltest.TestCase):

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if MEASURED:
            print(f"\ncoco128 AP (coco_evaluation, pycocotools):\n{table()}", flush=True)

    def test_float_checkpoint_has_no_fake_quant_variable_and_its_config_no_graph_rewriter(self):
        folder = recovered(True).folder
        names = [name for name, _ in tf.train.list_variables(os.path.join(folder, checkpoint_files.PREFIX))]
        self.assertEqual([name for name in names if "_quant/" in name], [])
        quantized = [name for name, _ in tf.train.list_variables(
            os.path.join(recovered(False).folder, checkpoint_files.PREFIX))]
        self.assertCountEqual(names, [name for name in quantized if "_quant/" not in name])
        self.assertFalse(pipeline_config.read(os.path.join(folder, "pipeline.config")).quantized)
        self.assertEqual(recovered(True).export_flags, recovered(False).export_flags)

    def test_round_trip_scores_the_originals_ap(self):
        original, rebuilt = scores("original"), scores("round trip")
        self.assertEqual((rebuilt.ap, rebuilt.ap50), (original.ap, original.ap50), table())

    def test_float_build_keeps_the_originals_ap(self):
        self.assertGreaterEqual(scores("float").ap, scores("original").ap - MAX_FLOAT_AP_DROP, table())

    def test_default_range_uint8_build_loses_the_model(self):
        self.assertLess(scores("default-range uint8").ap, MAX_DEFAULT_RANGE_AP, table())

    def test_calibrated_uint8_build_keeps_the_float_builds_ap_on_other_images(self):
        evaluated = {image["file_name"] for image in image_set(EVALUATED_IMAGES).images}
        self.assertFalse(evaluated & {os.path.basename(path) for path in calibration_images()})
        calibrated = scores("calibrated uint8", EVALUATED_IMAGES)
        scores("original", EVALUATED_IMAGES)  # not a bound: for the table, beside the float build's
        self.assertGreaterEqual(calibrated.ap, scores("float", EVALUATED_IMAGES).ap - MAX_CALIBRATED_AP_DROP,
                                table())


if __name__ == "__main__":
    absltest.main()
