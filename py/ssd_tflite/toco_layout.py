"""Gives a QUANTIZED_UINT8 model from TF 2.21's converter the layout TOCO gave it.

TF 2.21's converter differs from TOCO (2018-2020) in three ways that the
detections or the users see:
- it feeds TFLite_Detection_PostProcess float box codes and class scores
  through DEQUANTIZE ops; TOCO fed the uint8 tensors directly (the kernel
  dequantizes them itself, with the same arithmetic);
- it keeps the anchors a float32 constant; TOCO quantized them to uint8 over
  [min(0, a), max(0, a)], which moves each box by up to half a step (0.0032
  at 300x300) and can tip a near-tie in non-maximum suppression;
- it names fused tensors `A;B;C`; TOCO named an activation by the first part
  and a constant by the last.
`apply` rewrites those three and drops what becomes unused.
"""

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ssd_tflite import flatbuffer_model
from ssd_tflite.quantization import UINT8_STEPS, nudged_zero_point

_FUSED_NAME_SEPARATOR = ";"


def quantize_anchors(anchors: np.ndarray) -> tuple[np.ndarray, float, int]:
    """uint8 anchors, scale and zero point over [min(0, a), max(0, a)], nudged and rounded as TOCO did."""
    low, high = min(0.0, float(anchors.min())), max(0.0, float(anchors.max()))
    scale = (high - low) / UINT8_STEPS if high > low else 1.0
    zero_point = nudged_zero_point(low, scale)
    levels = np.floor(anchors.astype(np.float64) / scale + zero_point + 0.5)
    return np.clip(levels, 0, UINT8_STEPS).astype(np.uint8), scale, zero_point


def _feed_uint8_inputs(model: schema.ModelT, postprocess: schema.OperatorT) -> None:
    subgraph = model.subgraphs[0]
    produced_by = flatbuffer_model.producers(subgraph)
    inputs = [int(index) for index in postprocess.inputs]
    for position in (0, 1):  # box encodings, class scores
        producer = produced_by.get(inputs[position])
        if producer is not None and flatbuffer_model.opcode_name(model, subgraph.operators[producer]) == "DEQUANTIZE":
            inputs[position] = int(subgraph.operators[producer].inputs[0])
    postprocess.inputs = inputs


def _quantize_anchor_constant(model: schema.ModelT, postprocess: schema.OperatorT) -> None:
    tensor = model.subgraphs[0].tensors[postprocess.inputs[2]]
    anchors = flatbuffer_model.constant(model, tensor)
    if tensor.type != schema.TensorType.FLOAT32 or anchors is None:
        return
    levels, scale, zero_point = quantize_anchors(anchors)
    model.buffers[tensor.buffer].data = np.frombuffer(levels.tobytes(), np.uint8)
    tensor.type = schema.TensorType.UINT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale = [scale]
    tensor.quantization.zeroPoint = [zero_point]
    tensor.quantization.min = [min(0.0, float(anchors.min()))]
    tensor.quantization.max = [max(0.0, float(anchors.max()))]


def _drop_unused(model: schema.ModelT) -> None:
    """Removes operators whose outputs nothing reads, then unreferenced tensors and buffers."""
    subgraph = model.subgraphs[0]
    while True:
        read = {index for operator in subgraph.operators for index in operator.inputs} | set(subgraph.outputs)
        kept = [operator for operator in subgraph.operators if any(index in read for index in operator.outputs)]
        if len(kept) == len(subgraph.operators):
            break
        subgraph.operators = kept
    used = sorted({index for operator in subgraph.operators for index in [*operator.inputs, *operator.outputs]
                   if index >= 0} | set(subgraph.inputs) | set(subgraph.outputs))
    tensor_map = {old: new for new, old in enumerate(used)}
    remap = lambda indices: [tensor_map[index] if index >= 0 else index for index in indices]  # noqa: E731
    for operator in subgraph.operators:
        operator.inputs, operator.outputs = remap(operator.inputs), remap(operator.outputs)
    subgraph.inputs, subgraph.outputs = remap(subgraph.inputs), remap(subgraph.outputs)
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.tensorIndex = tensor_map[entry.tensorIndex]
    subgraph.tensors = [subgraph.tensors[index] for index in used]

    metadata = model.metadata or []
    kept_buffers = sorted({0} | {tensor.buffer for tensor in subgraph.tensors} | {entry.buffer for entry in metadata}
                          | set(model.metadataBuffer if model.metadataBuffer is not None else []))
    buffer_map = {old: new for new, old in enumerate(kept_buffers)}
    for tensor in subgraph.tensors:
        tensor.buffer = buffer_map[tensor.buffer]
    for entry in metadata:
        entry.buffer = buffer_map[entry.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [buffer_map[index] for index in model.metadataBuffer]
    model.buffers = [model.buffers[index] for index in kept_buffers]


def _toco_names(model: schema.ModelT) -> None:
    """Activations take the first part of a fused name, constants the last; a taken name stays fused."""
    taken = set()
    for tensor in model.subgraphs[0].tensors:
        fused = flatbuffer_model.tensor_name(tensor)
        parts = fused.split(_FUSED_NAME_SEPARATOR)
        short = parts[-1] if flatbuffer_model.constant(model, tensor) is not None else parts[0]
        name = short if short not in taken else fused
        taken.add(name)
        tensor.name = name.encode()


def apply(content: bytes, path: str) -> bytes:
    """The converted model `content` (from `path`) in TOCO's layout."""
    model = flatbuffer_model.load(content, path)
    postprocess = flatbuffer_model.postprocess_operator(model, path)
    _feed_uint8_inputs(model, postprocess)
    _quantize_anchor_constant(model, postprocess)
    _drop_unused(model)
    _toco_names(model)
    return flatbuffer_model.pack(model)
