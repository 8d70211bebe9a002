"""Providers shared by the rules_ssd_tflite rules."""

SsdCheckpointInfo = provider(
    doc = "A detection checkpoint and the pipeline.config it was trained with.",
    fields = {
        "index": "File: `<prefix>.index`; the checkpoint prefix is its path without `.index`.",
        "data": "depset of File: the `<prefix>.data-*` shards.",
        "pipeline_config": "File: the model's pipeline.config.",
        "synthetic": "bool: True for a synthesized checkpoint with random values.",
    },
)

SsdTfliteModelInfo = provider(
    doc = "A converted detection model and its input/output contract.",
    fields = {
        "tflite": "File: the `.tflite` flatbuffer.",
        "graph": "File: the frozen export graph (`tflite_graph.pb`) it was converted from.",
        "labels": "File: one class name per line, in class-index order (no background line).",
        "metadata": "File: JSON with input name, shape, dtype and normalization, outputs and settings.",
        "input_array": "string: name of the input tensor.",
        "output_arrays": "list of string: names of the four output tensors (boxes, classes, scores, count).",
        "inference_type": "string: FLOAT or QUANTIZED_UINT8 (always for calibrated builds); empty when taken from the config at build time.",
        "synthetic": "bool: True when built from a synthesized checkpoint.",
    },
)

def checkpoint_prefix(checkpoint_info):
    """The checkpoint prefix (path without `.index`) of an SsdCheckpointInfo."""
    return checkpoint_info.index.path[:-len(".index")]
