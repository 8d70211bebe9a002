"""Providers shared by the rules_ssd_tflite rules: the contracts between checkpoint, graph and model."""

SsdCheckpointInfo = provider(
    doc = "A detection checkpoint and the pipeline.config it was trained with.",
    fields = {
        "index": "File: `<prefix>.index`; the checkpoint prefix is its path without `.index`.",
        "data": "depset of File: the `<prefix>.data-*` shards.",
        "pipeline_config": "File: the model's pipeline.config.",
        "synthetic": "bool: True for a synthesized checkpoint with random values.",
    },
)

SsdTfliteGraphInfo = provider(
    doc = "A frozen TFLite-ready graph (`tflite_graph.pb`) exported from a checkpoint, and how it was made.",
    fields = {
        "graph": "File: the binary GraphDef, ending in the TFLite_Detection_PostProcess op.",
        "pipeline_config": "File: the config it was exported with (before config_override).",
        "config_override": "string: text proto merged on top of pipeline_config.",
        "postprocessing_flags": "list of string: the export's post-processing flags (--max_detections=...).",
        "embed_input_normalization": "bool: the graph takes (pixel - 128) / 128 whatever the feature extractor.",
        "calibrated": "bool: the graph carries FakeQuant ranges measured on images.",
        "checkpoint": "Label: the checkpoint it was exported from.",
        "synthetic": "bool: True when the checkpoint is synthesized.",
    },
)

SsdTfliteModelInfo = provider(
    doc = "A converted detection model and its input/output contract.",
    fields = {
        "tflite": "File: the `.tflite` flatbuffer.",
        "graph": "File: the frozen export graph (`tflite_graph.pb`) it was converted from.",
        "labels": "File: one class name per line, in class-index order (no background line).",
        "contract": "File: the model contract (`<name>_contract.json`): input name, shape, dtype and normalization, outputs and settings.",
        "input_array": "string: name of the input tensor.",
        "output_arrays": "list of string: names of the four output tensors (boxes, classes, scores, count).",
        "inference_type": "string: FLOAT or QUANTIZED_UINT8.",
        "synthetic": "bool: True when built from a synthesized checkpoint.",
    },
)

def checkpoint_prefix(checkpoint_info):
    """The checkpoint prefix (path without `.index`) of an SsdCheckpointInfo."""
    return checkpoint_info.index.path[:-len(".index")]
