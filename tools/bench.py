"""The benchmark behind tools/bench: measures and prints a markdown report."""

import datetime
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from ssd_tflite import agreement, detection

BIN = "bazel-bin"
# target -> (config, float twin for the uint8-vs-float gap)
MODELS = {
    "ssd_mobilenet_v1_quant_tflite": ("ssd_mobilenet_v1_quant", None),
    "ssd_mobilenet_v2_quant_tflite": ("ssd_mobilenet_v2_quant", None),
    "ssdlite_mobilenet_v2_tflite": ("ssdlite_mobilenet_v2", None),
    "ssdlite_mobilenet_v2_uint8_tflite": ("ssdlite_mobilenet_v2", "ssdlite_mobilenet_v2_tflite"),
    "ssdlite_mobilenet_v2_calibrated_uint8_tflite": ("ssdlite_mobilenet_v2", "ssdlite_mobilenet_v2_tflite"),
    "ssd_resnet50_fpn_tflite": ("ssd_resnet50_fpn", None),
    "ssd_resnet50_fpn_uint8_tflite": ("ssd_resnet50_fpn", "ssd_resnet50_fpn_tflite"),
    "ssd_resnet50_fpn_calibrated_uint8_tflite": ("ssd_resnet50_fpn", "ssd_resnet50_fpn_tflite"),
    "mlperf_ssd_mobilenet_v1_8bit_tflite": ("mlperf_ssd_mobilenet_v1_8bit", None),
}
IMAGES = ("tests/testdata/chelsea.png", "tests/testdata/coffee.png")
# What //models:calibration_images globs.
CALIBRATION_IMAGES = sorted(glob.glob("models/calibration/*.jpg") + glob.glob("models/calibration/*.png"))


def measured(argv: list[str]) -> tuple[float, float]:
    """Runs a command; returns wall seconds and its peak resident memory in MiB."""
    start = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - start
    if status != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{process.stderr.read().decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def converter_flags(target: str) -> list[str]:
    with open(f"{BIN}/models/{target}_converter.flags") as flags:
        return flags.read().split()


def metadata(target: str) -> dict:
    with open(f"{BIN}/models/{target}_metadata.json") as metadata_file:
        return json.load(metadata_file)


def pipeline(target: str, workdir: str) -> dict:
    config = f"models/configs/{MODELS[target][0]}.pipeline.config"
    checkpoint = os.path.join(workdir, target, "checkpoint")
    export = os.path.join(workdir, target, "export")
    synth = measured([f"{BIN}/py/make_synthetic_checkpoint", f"--pipeline_config_path={config}",
                      f"--output_directory={checkpoint}"])
    export_argv = [f"{BIN}/py/export_tflite_ssd_graph", f"--pipeline_config_path={config}",
                   f"--trained_checkpoint_prefix={checkpoint}/model.ckpt", f"--output_directory={export}",
                   "--write_pbtxt=false"]
    if metadata(target)["input"]["embedded_normalization"]:
        export_argv.append("--embed_input_normalization")
    if metadata(target)["activation_ranges"] == "calibrated on images":
        export_argv.append("--calibration_images=" + ",".join(CALIBRATION_IMAGES))
    exported = measured(export_argv)
    converted = measured([f"{BIN}/py/toco", f"--input_file={export}/tflite_graph.pb",
                          f"--output_file={export}/detect.tflite", *converter_flags(target)])
    return {"checkpoint": synth, "export": exported, "convert": converted,
            "size": os.path.getsize(f"{export}/detect.tflite")}


def uint8_gap(target: str, float_target: str) -> agreement.Agreement:
    """How the uint8 build's top-10 detections match the float build's on IMAGES."""
    images = [detection.load_image(path) for path in IMAGES]
    return agreement.compare_models(detection.open_detector(f"{BIN}/models/{float_target}.tflite"),
                                    detection.open_detector(f"{BIN}/models/{target}.tflite"), images)


def bazel_build_seconds(*args: str) -> float:
    start = time.monotonic()
    subprocess.run(["tools/bazel", "build", *args, "//models:all"], check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for target, (_, float_twin) in MODELS.items():
            result = pipeline(target, workdir)
            gap = uint8_gap(target, float_twin) if float_twin else ""
            rows.append(f"| `{target}` | {result['checkpoint'][0]:.1f} s | {result['export'][0]:.1f} s / "
                        f"{result['export'][1]:.0f} MiB | {result['convert'][0]:.1f} s / {result['convert'][1]:.0f} MiB "
                        f"| {result['size'] / 2**20:.1f} MiB | {gap} |")
            print(f"bench: {target} done", file=sys.stderr)
    subprocess.run(["tools/bazel", "clean"], check=True, capture_output=True)
    cold = bazel_build_seconds()
    warm = bazel_build_seconds()
    cores = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / 2**20
    report = "\n".join([
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {cores} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, synthetic checkpoints.",
        "",
        "| target | synthesize checkpoint | export (time / peak RSS) | convert (time / peak RSS) | .tflite "
        "| uint8 vs float: top-10 detections on 2 photos matched, mean IoU, mean score gap |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"`tools/bazel build //models:all`: cold (after `bazel clean`, Bazel and the virtualenv installed) "
        f"{cold:.0f} s, warm no-op {warm:.1f} s.",
    ])
    print(report)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as out:
            out.write(report + "\n")


if __name__ == "__main__":
    main()
