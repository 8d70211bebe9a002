"""Pairs the operators of two .tflite models of one network by data flow, for op-by-op comparison.

Starting from the inputs, an operator of model A is paired with the operator
of model B that has the same opcode, reads the paired tensors and has
constants of the same shapes. RESHAPE ops are paired on their data input
alone (TOCO reshaped box codes to [1, N, 1, 4] and squeezed them, the export
reshapes to [1, N, 4] at once); one without a counterpart passes its input's
pairing on.
"""

import dataclasses

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from ssd_tflite import flatbuffer_model


def _is_constant(model: schema.ModelT, index: int) -> bool:
    return index >= 0 and flatbuffer_model.constant(model, model.subgraphs[0].tensors[index]) is not None


def _data_inputs(model: schema.ModelT, operator: schema.OperatorT) -> list[int]:
    return [int(index) for index in operator.inputs if index >= 0 and not _is_constant(model, index)]


def _constant_shapes(model: schema.ModelT, operator: schema.OperatorT) -> list[tuple[int, ...]]:
    return [tuple(model.subgraphs[0].tensors[index].shape) for index in operator.inputs if _is_constant(model, index)]


@dataclasses.dataclass
class Pairing:
    operators: list[tuple[int, int]]  # (index in A, index in B)
    tensors: dict[int, int]  # tensor of A -> tensor of B
    unpaired: list[int]  # operators of A without a counterpart


def pair(a: schema.ModelT, b: schema.ModelT) -> Pairing:
    graph_a, graph_b = a.subgraphs[0], b.subgraphs[0]
    tensors = {int(x): int(y) for x, y in zip(graph_a.inputs, graph_b.inputs)}
    operators: list[tuple[int, int]] = []
    taken: set[int] = set()
    remaining = list(range(len(graph_a.operators)))
    progress = True
    while remaining and progress:
        progress = False
        for index_a in list(remaining):
            operator_a = graph_a.operators[index_a]
            inputs = _data_inputs(a, operator_a)
            if not all(tensor in tensors for tensor in inputs):
                continue
            name = flatbuffer_model.opcode_name(a, operator_a)
            reshape = name == "RESHAPE"
            wanted = sorted(tensors[tensor] for tensor in inputs)
            match = next((index_b for index_b, operator_b in enumerate(graph_b.operators)
                          if index_b not in taken and flatbuffer_model.opcode_name(b, operator_b) == name
                          and sorted(_data_inputs(b, operator_b)) == wanted
                          and (reshape or _constant_shapes(a, operator_a) == _constant_shapes(b, operator_b))), None)
            if match is not None:
                operators.append((index_a, match))
                taken.add(match)
                tensors.update({int(x): int(y) for x, y in zip(operator_a.outputs, graph_b.operators[match].outputs)})
            elif reshape:
                tensors[int(operator_a.outputs[0])] = tensors[inputs[0]]
            else:
                continue
            remaining.remove(index_a)
            progress = True
    return Pairing(operators, tensors, remaining)


def differing_constants(a: schema.ModelT, b: schema.ModelT, pairing: Pairing) -> tuple[int, list[str]]:
    """How many constants (weights, biases, anchors; not reshape shapes) were compared, and those that differ."""
    compared, differing = 0, []
    for index_a, index_b in pairing.operators:
        operator_a, operator_b = a.subgraphs[0].operators[index_a], b.subgraphs[0].operators[index_b]
        if flatbuffer_model.opcode_name(a, operator_a) == "RESHAPE":
            continue
        for tensor_a, tensor_b in zip(operator_a.inputs, operator_b.inputs):
            if not _is_constant(a, tensor_a):
                continue
            compared += 1
            value_a = flatbuffer_model.constant(a, a.subgraphs[0].tensors[tensor_a])
            value_b = flatbuffer_model.constant(b, b.subgraphs[0].tensors[tensor_b]) if tensor_b >= 0 else None
            if value_b is None or value_a.dtype != value_b.dtype or not np.array_equal(value_a, value_b):
                differing.append(flatbuffer_model.tensor_name(a.subgraphs[0].tensors[tensor_a]))
    return compared, differing
