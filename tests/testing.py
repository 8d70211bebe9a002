"""Helpers shared by the tests: runfiles, reference layouts, checkpoints from manifests."""

import ast
import os

import numpy as np

from ssd_tflite import synthetic

REFERENCE_MODELS = (
    "ssd_mobilenet_v1_quantized_zoo",
    "ssd_mobilenet_v1_float_zoo",
    "ssd_mobilenet_v2_quantized_finetune_5class",
    "ssd_mobilenet_v2_quantized_zoo",
    "ssdlite_mobilenet_v2_zoo",
    "ssd_resnet50_v1_fpn_finetune_11class",
)


def runfile(path: str) -> str:
    """Absolute path of a file of this workspace in the test's runfiles."""
    return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], path)


def testdata(name: str) -> str:
    return runfile(os.path.join("tests", "testdata", name))


def read_manifest(model: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of every variable of a real checkpoint (testdata/<model>.manifest.tsv)."""
    manifest = {}
    with open(testdata(model + ".manifest.tsv")) as lines:
        for line in lines:
            name, shape, dtype = line.rstrip("\n").split("\t")
            manifest[name] = (tuple(ast.literal_eval(shape)), dtype)
    return manifest


def write_manifest_checkpoint(prefix: str, manifest: dict[str, tuple[tuple[int, ...], str]], seed: int = 0) -> None:
    """A checkpoint with exactly the manifest's variables, filled with random values."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, (shape, dtype) in manifest.items():
        value = rng.normal(0.0, 0.05, shape)
        if name.endswith("moving_variance"):
            value = np.abs(value) + 0.5
        values[name] = value.astype(dtype)
    synthetic.write_checkpoint(prefix, values)
