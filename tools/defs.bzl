"""Public API of rules_ssd_tflite.

    load("@rules_ssd_tflite//tools:defs.bzl", "ssd_tflite_graph", "ssd_tflite_model")

Checkpoint (`ssd_checkpoint`, `synthetic_ssd_checkpoint`) -> exported graph
(`ssd_tflite_graph`) -> converted model (`ssd_tflite_model`), each step a
rule whose provider is the contract with the next; `ssd_tflite_accuracy_test`
holds a model's COCO mAP on annotated images to a bound.
"""

load("//tools/private:accuracy_test.bzl", _ssd_tflite_accuracy_test = "ssd_tflite_accuracy_test")
load("//tools/private:checkpoint.bzl", _ssd_checkpoint = "ssd_checkpoint", _synthetic_ssd_checkpoint = "synthetic_ssd_checkpoint")
load("//tools/private:graph.bzl", _ssd_tflite_graph = "ssd_tflite_graph")
load("//tools/private:model.bzl", _ssd_tflite_model = "ssd_tflite_model")
load(
    "//tools/private:providers.bzl",
    _SsdCheckpointInfo = "SsdCheckpointInfo",
    _SsdTfliteGraphInfo = "SsdTfliteGraphInfo",
    _SsdTfliteModelInfo = "SsdTfliteModelInfo",
)

ssd_checkpoint = _ssd_checkpoint
synthetic_ssd_checkpoint = _synthetic_ssd_checkpoint
ssd_tflite_graph = _ssd_tflite_graph
ssd_tflite_model = _ssd_tflite_model
ssd_tflite_accuracy_test = _ssd_tflite_accuracy_test
SsdCheckpointInfo = _SsdCheckpointInfo
SsdTfliteGraphInfo = _SsdTfliteGraphInfo
SsdTfliteModelInfo = _SsdTfliteModelInfo
