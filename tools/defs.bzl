"""Public API of rules_ssd_tflite.

    load("@rules_ssd_tflite//tools:defs.bzl", "ssd_tflite_model")
"""

load("//tools/private:checkpoint.bzl", _ssd_checkpoint = "ssd_checkpoint", _synthetic_ssd_checkpoint = "synthetic_ssd_checkpoint")
load("//tools/private:model.bzl", _ssd_tflite_model = "ssd_tflite_model")
load("//tools/private:providers.bzl", _SsdCheckpointInfo = "SsdCheckpointInfo", _SsdTfliteModelInfo = "SsdTfliteModelInfo")

ssd_checkpoint = _ssd_checkpoint
synthetic_ssd_checkpoint = _synthetic_ssd_checkpoint
ssd_tflite_model = _ssd_tflite_model
SsdCheckpointInfo = _SsdCheckpointInfo
SsdTfliteModelInfo = _SsdTfliteModelInfo
