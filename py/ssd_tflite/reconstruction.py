"""Rebuilds a checkpoint from a quantized TOCO `detect.tflite` and its pipeline.config.

A deployed model keeps its trained values in quantized form: each convolution's
batch-norm-folded weights (uint8, with scale and zero point), its bias (int32
at input scale x weight scale), and the min/max of every FakeQuant range,
stored beside each tensor's scale. Put back into the variables the export
reads, with an identity batch norm (gamma 1, beta the folded bias, moving
mean 0, moving variance 1 - epsilon), they give the model back through the
export and the converter.

Layers are matched by the data flow, not by names (which changed between
TOCO versions): starting at the input, each convolution of the graph that the
config describes is paired with the model's convolution that reads the
paired input and has the same kind, kernel, stride and depth; residual adds
are paired by their two inputs.
"""

import dataclasses
import re
from typing import Optional

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from ssd_tflite import export, flatbuffer_model, pipeline_config, postprocess_options
from ssd_tflite.checkpoint import MOVING_AVERAGE_SUFFIX, TRAINABLE_KINDS
from ssd_tflite.errors import InputError, ReconstructionError
from ssd_tflite.model_spec import ModelSpec
from ssd_tflite.quantization import UINT8_STEPS, nudged_zero_point
from ssd_tflite.tflite_graph import PostProcessingFlags

# Ops a layer's value passes through unchanged in kind: the layer is the op before them.
_PASS_THROUGH_TF_OPS = frozenset({"FakeQuantWithMinMaxVars", "Relu6", "Relu", "BiasAdd", "Identity"})
_CONV_TF_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative"})
_CONV_TFLITE_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"})
# Feature-extractor variables live under this scope; the rest belong to the box predictor.
_FEATURE_EXTRACTOR_SCOPE = "FeatureExtractor/"


@dataclasses.dataclass
class _Layer:
    """One convolution as the export builds it: its variables and FakeQuant scopes."""
    weights: str
    shape: tuple[int, ...]
    batch_norm: Optional[str] = None  # scope of gamma/beta/moving_mean/moving_variance
    biases: Optional[str] = None
    weights_quant: Optional[str] = None
    act_quant: Optional[str] = None
    conv_op: Optional[tf.Operation] = None


class _LayoutRecorder:
    """A `layers.VariableSource` with zero values that records each layer's variables in build order."""

    def __init__(self) -> None:
        self.layers: list[_Layer] = []
        self.residual_adds: dict[str, tf.Operation] = {}  # post_activation_bypass_quant scope -> add op

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        scope, kind = name.rsplit("/", 1)
        if kind in ("weights", "depthwise_weights"):
            self.layers.append(_Layer(weights=name, shape=shape))
        elif kind == "biases":
            self.layers[-1].biases = scope
        elif kind == "gamma":
            self.layers[-1].batch_norm = scope
        return np.zeros(shape, np.float32)

    def weights_range(self, scope: str, folded_weights: np.ndarray) -> tuple[float, float]:
        self.layers[-1].weights_quant = f"{scope}/weights_quant"
        return -1.0, 1.0

    def activation_range(self, scope: str, activation: tf.Tensor) -> tuple[float, float]:
        op = _skip_pass_through(activation.op)
        if op.type in _CONV_TF_OPS:
            self.layers[-1].act_quant = scope
            self.layers[-1].conv_op = op
        else:
            self.residual_adds[scope] = op
        return -1.0, 1.0


def _skip_pass_through(op: tf.Operation) -> tf.Operation:
    while op.type in _PASS_THROUGH_TF_OPS:
        op = op.inputs[0].op
    return op


@dataclasses.dataclass(frozen=True)
class _Signature:
    depthwise: bool
    kernel: tuple[int, int]
    stride: int
    channels: int  # output channels

    def __str__(self) -> str:
        kind = "depthwise" if self.depthwise else "conv"
        return f"{self.kernel[0]}x{self.kernel[1]} {kind}, stride {self.stride}, {self.channels} channels"


def _tf_signature(op: tf.Operation) -> _Signature:
    kernel = op.inputs[1].shape.as_list()
    depthwise = op.type == "DepthwiseConv2dNative"
    channels = kernel[2] * kernel[3] if depthwise else kernel[3]
    return _Signature(depthwise, (kernel[0], kernel[1]), op.get_attr("strides")[1], channels)


class _Model:
    """The quantized .tflite: its convolutions, adds and the tensors between them."""

    def __init__(self, model: schema.ModelT, path: str):
        self.model = model
        self.path = path
        self.subgraph = model.subgraphs[0]
        self.produced_by = flatbuffer_model.producers(self.subgraph)
        self.ops = [flatbuffer_model.opcode_name(model, operator) for operator in self.subgraph.operators]

    def tensor(self, index: int) -> schema.TensorT:
        return self.subgraph.tensors[index]

    def source(self, index: int) -> tuple:
        """The conv or add op (or the graph input) whose output tensor `index` is, through reshapes."""
        producer = self.produced_by.get(index)
        while producer is not None and self.ops[producer] == "RESHAPE":  # ends: loading refuses cycles
            producer = self.produced_by.get(self.subgraph.operators[producer].inputs[0])
        return ("input",) if producer is None else (self.ops[producer], producer)

    def convolution_constants(self, op_index: int) -> tuple[int, int]:
        """The weights and bias tensors of a convolution, which must be uint8 and int32 constants."""
        inputs = [int(index) for index in self.subgraph.operators[op_index].inputs]
        if len(inputs) != 3 or inputs[2] < 0:
            raise InputError(f"{self.path}: operator {op_index} ({self.ops[op_index]}) has no bias input; the "
                             "convolutions of a TOCO detect.tflite have weights and a bias")
        for index, role, (tensor_type, type_name) in ((inputs[1], "weights", (schema.TensorType.UINT8, "uint8")),
                                                      (inputs[2], "bias", (schema.TensorType.INT32, "int32"))):
            tensor = self.tensor(index)
            if tensor.type != tensor_type or flatbuffer_model.constant(self.model, tensor) is None:
                raise InputError(f"{self.path}: tensor {index} '{flatbuffer_model.tensor_name(tensor)}', the {role} "
                                 f"of operator {op_index} ({self.ops[op_index]}), is not a {type_name} constant; "
                                 "this tool reads QUANTIZED_UINT8 models")
        return inputs[1], inputs[2]

    def signature(self, op_index: int) -> _Signature:
        operator = self.subgraph.operators[op_index]
        shape = self.tensor(operator.inputs[1]).shape  # conv [out, kh, kw, in]; depthwise [1, kh, kw, out]
        options = operator.builtinOptions
        return _Signature(self.ops[op_index] == "DEPTHWISE_CONV_2D", (int(shape[1]), int(shape[2])),
                          int(options.strideH), int(shape[0] if self.ops[op_index] == "CONV_2D" else shape[3]))

    def quantization(self, index: int) -> flatbuffer_model.Quantization:
        params = flatbuffer_model.quantization(self.tensor(index))
        if params is None:
            raise ReconstructionError(f"{self.path}: tensor {flatbuffer_model.tensor_name(self.tensor(index))} "
                                      "is not quantized; this tool reads QUANTIZED_UINT8 models")
        if len(self.tensor(index).quantization.scale) > 1:
            raise InputError(f"{self.path}: tensor {flatbuffer_model.tensor_name(self.tensor(index))} is quantized "
                             "per channel; this tool reads TOCO's per-tensor QUANTIZED_UINT8 models")
        return params


def _tf_source(tensor: tf.Tensor) -> tuple:
    op = _skip_pass_through(tensor.op)
    if op.type == "Placeholder":
        return ("input",)
    return (op.type, op.name)


def _match(recorder: _LayoutRecorder, model: _Model, spec: ModelSpec) -> dict[str, int]:
    """TF op name -> .tflite op index for every convolution and residual add."""
    matched: dict[tuple, tuple] = {("input",): ("input",)}
    tf_convs = [layer.conv_op for layer in recorder.layers]
    tflite_convs = [index for index, op in enumerate(model.ops) if op in _CONV_TFLITE_OPS]
    tflite_adds = [index for index, op in enumerate(model.ops) if op == "ADD"]
    if (len(tf_convs), len(recorder.residual_adds)) != (len(tflite_convs), len(tflite_adds)):
        raise ReconstructionError(
            f"{model.path}: the config describes {len(tf_convs)} convolutions and {len(recorder.residual_adds)} "
            f"residual adds ({spec.feature_extractor.type}, depth multiplier {spec.feature_extractor.depth_multiplier}"
            f"), the model has {len(tflite_convs)} and {len(tflite_adds)}: is this the model's own config?")
    taken: set[int] = set()
    progress = True
    while progress:
        progress = False
        for op in tf_convs:
            source = matched.get(_tf_source(op.inputs[0]))
            if (op.type, op.name) in matched or source is None:
                continue
            wanted = _tf_signature(op)
            candidates = [index for index in tflite_convs if index not in taken
                          and model.source(model.subgraph.operators[index].inputs[0]) == source]
            fitting = [index for index in candidates if model.signature(index) == wanted]
            if not fitting:
                found = ", ".join(str(model.signature(index)) for index in candidates) or "none"
                raise ReconstructionError(
                    f"{model.path}: layer {op.name.rsplit('/', 1)[0]} of the config is a {wanted}; the model's "
                    f"unmatched convolutions on the same input are: {found}. Check num_classes, depth_multiplier "
                    "and the anchor generator of the config.")
            matched[(op.type, op.name)] = (model.ops[fitting[0]], fitting[0])
            taken.add(fitting[0])
            progress = True
        for op in recorder.residual_adds.values():
            sources = [matched.get(_tf_source(tensor)) for tensor in op.inputs]
            if (op.type, op.name) in matched or None in sources:
                continue
            for index in tflite_adds:
                operands = sorted(model.source(tensor) for tensor in model.subgraph.operators[index].inputs)
                if index not in taken and operands == sorted(sources):
                    matched[(op.type, op.name)] = ("ADD", index)
                    taken.add(index)
                    progress = True
                    break
    unmatched = [op.name for op in [*tf_convs, *recorder.residual_adds.values()] if (op.type, op.name) not in matched]
    if unmatched:
        raise ReconstructionError(f"{model.path}: no counterpart in the model for {len(unmatched)} layer(s) of the "
                                  f"config, first {unmatched[0]}")
    return {tf_key[1]: tflite_key[1] for tf_key, tflite_key in matched.items() if tf_key != ("input",)}


def _ulp_steps(value: float, steps: int) -> np.float32:
    moved = np.float32(value)
    for _ in range(abs(steps)):
        moved = np.nextafter(moved, np.float32(np.inf if steps > 0 else -np.inf), dtype=np.float32)
    return moved


def _fitting_range(minimum: float, maximum: float, levels: int, params: flatbuffer_model.Quantization,
                   pinned: frozenset[str] = frozenset(),
                   check_zero_point: bool = True) -> Optional[tuple[np.float32, np.float32]]:
    """float32 min/max that the converter turns into `params`' scale (and zero point), or None.

    Stored ranges are float32-rounded, so (max - min) / levels can land an ulp
    off the stored scale: an end not `pinned` ("min", "max") moves by up to two
    ulps to hit it exactly. The zero point is nudged as FakeQuant does: rounded.
    """
    first_level = UINT8_STEPS - levels
    moves = [(0, 0)] + [(low, 0) for low in (1, -1, 2, -2) if "min" not in pinned] \
        + [(0, high) for high in (1, -1, 2, -2) if "max" not in pinned]
    for low_steps, high_steps in moves:
        low, high = _ulp_steps(minimum, low_steps), _ulp_steps(maximum, high_steps)
        scale = (np.float64(high) - np.float64(low)) / levels
        zero_point = nudged_zero_point(low, scale, first_level)
        if np.float32(scale) == np.float32(params.scale) and (zero_point == params.zero_point or not check_zero_point):
            return low, high
    return None


def _stored_range(params: flatbuffer_model.Quantization, levels: int, first_level: int) -> tuple[float, float]:
    """The tensor's FakeQuant min/max: stored beside its scale, or else its quantized range."""
    if params.minimum is not None and params.maximum is not None:
        return params.minimum, params.maximum
    return (first_level - params.zero_point) * params.scale, (UINT8_STEPS - params.zero_point) * params.scale


def _weight_levels(params: flatbuffer_model.Quantization, levels: np.ndarray) -> tuple[int, int]:
    """(steps, first level): 254 from byte 1 for narrow-range weights, 255 from byte 0 for the rest."""
    if params.minimum is not None and params.maximum is not None:
        steps = int(round((params.maximum - params.minimum) / params.scale))
        if steps in (UINT8_STEPS - 1, UINT8_STEPS):
            return steps, UINT8_STEPS - steps
    return (UINT8_STEPS - 1, 1) if levels.min() >= 1 else (UINT8_STEPS, 0)


# For the epsilons a config may hold (0 < epsilon <= 1), float32 1 - epsilon is already such a v
# (it was for 400,000 sampled ones); the steps are a margin, and a bound for any other input.
_IDENTITY_VARIANCE_STEPS = 4


def _identity_variance(epsilon: float) -> np.float32:
    """A moving variance v with float32 v + epsilon == 1, so that batch-norm folding scales by exactly 1."""
    variance = np.float32(1.0) - np.float32(epsilon)
    for _ in range(_IDENTITY_VARIANCE_STEPS):
        if np.float32(variance + np.float32(epsilon)) == np.float32(1.0):
            return variance
        variance = np.nextafter(variance, np.float32(np.inf if variance + np.float32(epsilon) < 1 else -np.inf),
                                dtype=np.float32)
    raise ReconstructionError(f"batch_norm.epsilon {epsilon}: no float32 moving variance v gives v + epsilon = 1")


@dataclasses.dataclass
class Reconstruction:
    """What was recovered: variables by checkpoint name, and how the model was converted."""
    values: dict[str, np.ndarray]
    postprocessing: PostProcessingFlags
    mean_value: float
    std_value: float
    weights_narrow_range: bool  # False: 256-level weights, convert with --ignore_weights_narrow_range
    # Head outputs that come back with their zero point one off (see _concat_bounded_ranges).
    moved_zero_points: list[str]
    fake_quant_ranges: frozenset[str]  # the `<scope>/min` and `<scope>/max` variables among `values`

    def float_values(self) -> dict[str, np.ndarray]:
        """The variables without FakeQuant ranges: a float checkpoint of the same (dequantized) weights."""
        return {name: value for name, value in self.values.items() if name not in self.fake_quant_ranges}


def _postprocessing(model: _Model, spec: ModelSpec) -> PostProcessingFlags:
    operator = flatbuffer_model.postprocess_operator(model.model, model.path)
    # Loading checked these options: a map with the kernel's keys, of the right kinds.
    options = postprocess_options.decode(bytes(bytearray(operator.customOptions)))
    if options.get("num_classes") != spec.num_classes:
        raise ReconstructionError(f"{model.path}: the model detects {options.get('num_classes')} classes, "
                                  f"the config's num_classes is {spec.num_classes}")
    defaults = PostProcessingFlags()
    return PostProcessingFlags(
        max_detections=int(options["max_detections"]),
        max_classes_per_detection=int(options["max_classes_per_detection"]),
        detections_per_class=int(options.get("detections_per_class", defaults.detections_per_class)),
        use_regular_nms=bool(options.get("use_regular_nms", defaults.use_regular_nms)))


def reconstruct(model_path: str, spec: ModelSpec) -> Reconstruction:
    """The checkpoint variables and conversion settings that give the model at `model_path` back."""
    if not spec.quantized:
        raise ReconstructionError("the config has no graph_rewriter.quantization: this tool rebuilds "
                                  "quantization-aware checkpoints from QUANTIZED_UINT8 models")
    model = _Model(flatbuffer_model.read(model_path), model_path)
    if len(model.subgraph.inputs) != 1:
        raise InputError(f"{model_path}: {len(model.subgraph.inputs)} inputs; a detect.tflite has one, the image")
    postprocessing = _postprocessing(model, spec)
    recorder = _LayoutRecorder()
    with tf.Graph().as_default():
        export.build_graph(spec, recorder, None, tf.compat.v1.get_default_graph(), fake_quantize=True)
        counterparts = _match(recorder, model, spec)

    values: dict[str, np.ndarray] = {}
    activation_ranges: dict[int, tuple[str, tuple[float, float]]] = {}  # output tensor -> (scope, range)
    narrow = set()
    for layer in recorder.layers:
        op_index = counterparts[layer.conv_op.name]
        weights_index, bias_index = model.convolution_constants(op_index)
        output_index = model.subgraph.operators[op_index].outputs[0]
        weights_params = model.quantization(weights_index)
        levels = flatbuffer_model.constant(model.model, model.tensor(weights_index))
        steps, first_level = _weight_levels(weights_params, levels)
        narrow.add(steps == UINT8_STEPS - 1)
        folded = ((levels.astype(np.float64) - weights_params.zero_point) * weights_params.scale).astype(np.float32)
        values[layer.weights] = _layer_shaped(model, weights_index, folded.transpose(1, 2, 3, 0), layer.shape)
        bias_params = model.quantization(bias_index)
        bias = flatbuffer_model.constant(model.model, model.tensor(bias_index))
        bias = _layer_shaped(model, bias_index, (bias.astype(np.float64) * bias_params.scale).astype(np.float32),
                             (_tf_signature(layer.conv_op).channels,))
        if layer.batch_norm:
            epsilon = (spec.feature_extractor.batch_norm_epsilon if layer.weights.startswith(_FEATURE_EXTRACTOR_SCOPE)
                       else spec.box_predictor.batch_norm_epsilon)
            values[f"{layer.batch_norm}/gamma"] = np.ones_like(bias)
            values[f"{layer.batch_norm}/beta"] = bias
            values[f"{layer.batch_norm}/moving_mean"] = np.zeros_like(bias)
            values[f"{layer.batch_norm}/moving_variance"] = np.full_like(bias, _identity_variance(epsilon))
        else:
            values[f"{layer.biases}/biases"] = bias
        values[f"{layer.weights_quant}/min"], values[f"{layer.weights_quant}/max"] = _checked_range(
            model, weights_index, _stored_range(weights_params, steps, first_level), steps)
        activation_ranges[output_index] = (layer.act_quant, _stored_range(model.quantization(output_index),
                                                                          UINT8_STEPS, 0))
    for scope, op in recorder.residual_adds.items():
        output_index = model.subgraph.operators[counterparts[op.name]].outputs[0]
        activation_ranges[output_index] = (scope, _stored_range(model.quantization(output_index), UINT8_STEPS, 0))
    if len(narrow) > 1:
        raise ReconstructionError(f"{model_path}: some weights use 254 levels and some 255; no converter setting "
                                  "gives such a model back")
    bounded, moved_zero_points = _concat_bounded_ranges(model, activation_ranges)
    for output_index, (scope, value_range) in activation_ranges.items():
        values[f"{scope}/min"], values[f"{scope}/max"] = (
            bounded[output_index] if output_index in bounded
            else _checked_range(model, output_index, value_range, UINT8_STEPS))
    if spec.use_moving_averages:
        for name in [name for name in values if name.rsplit("/", 1)[-1] in TRAINABLE_KINDS]:
            values[name + MOVING_AVERAGE_SUFFIX] = values[name]
    input_params = model.quantization(model.subgraph.inputs[0])
    range_scopes = [layer.weights_quant for layer in recorder.layers] + [scope for scope, _ in
                                                                         activation_ranges.values()]
    return Reconstruction(values, postprocessing, mean_value=float(input_params.zero_point),
                          std_value=float(round(1.0 / input_params.scale, 3)), weights_narrow_range=narrow == {True},
                          moved_zero_points=moved_zero_points,
                          fake_quant_ranges=frozenset(f"{scope}/{end}" for scope in range_scopes
                                                      for end in ("min", "max")))


# Text-format tokens: blanks and comments, quoted strings, punctuation, and words (names, numbers).
_TOKENS = re.compile(r"""(?P<blank>\s+|\#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
                     r"""|(?P<open>[{<])|(?P<close>[}>])|(?P<other>[:;,\[\]])|(?P<word>[^\s{}<>:;,\[\]\#"']+)""")
_QUANTIZATION_FIELD = "graph_rewriter"


def _top_level_field_spans(text: str, field: str, path: str) -> list[tuple[int, int]]:
    """(start, end) of each top-level `field { ... }` of a text-format message, end past its closing brace."""
    spans, depth, start, position = [], 0, None, 0
    while position < len(text):
        token = _TOKENS.match(text, position)
        if token is None:  # an unterminated string
            raise ReconstructionError(f"{path}: cannot read the config's text at offset {position}")
        kind, position = token.lastgroup, token.end()
        if kind == "word" and depth == 0 and token.group() == field:
            start = token.start()
        elif kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth == 0 and start is not None:
                spans.append((start, position))
                start = None
    return spans


def _with_own_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole lines (with the line break) when nothing else is on them."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end) + 1 or len(text)
    if text[line_start:start].strip() or text[end:line_end].strip():
        return start, end
    return line_start, line_end


def float_config(text: str, path: str) -> str:
    """The pipeline.config `text` without its `graph_rewriter` (quantization) blocks, all else as written.

    An edit of the text, not of a parsed message: our schema declares only the
    fields the export reads, so writing a parsed config back would drop the rest
    (train_config, input readers, comments) of the user's file.
    """
    edited, kept_until = [], 0
    for start, end in _top_level_field_spans(text, _QUANTIZATION_FIELD, path):
        start, end = _with_own_lines(text, start, end)
        edited.append(text[kept_until:start])
        kept_until = end
    edited.append(text[kept_until:])
    result = "".join(edited)
    if pipeline_config.parse(result, path).quantized:
        raise ReconstructionError(f"{path}: could not remove graph_rewriter from the config's text")
    return result


def _layer_shaped(model: _Model, index: int, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`value` of tensor `index`, which must have the `shape` of the config's variable."""
    if value.shape != tuple(shape):
        raise ReconstructionError(f"{model.path}: tensor {flatbuffer_model.tensor_name(model.tensor(index))} holds "
                                  f"{list(value.shape)} values (in the checkpoint's layout), the config's variable is "
                                  f"{list(shape)}")
    return np.ascontiguousarray(value)


def _checked_range(model: _Model, index: int, value_range: tuple[float, float],
                   levels: int) -> tuple[np.float32, np.float32]:
    fitting = _fitting_range(*value_range, levels, model.quantization(index))
    if fitting is None:
        params = model.quantization(index)
        raise ReconstructionError(
            f"{model.path}: tensor {flatbuffer_model.tensor_name(model.tensor(index))}: its stored range "
            f"[{value_range[0]}, {value_range[1]}] does not give its scale {params.scale} and zero point "
            f"{params.zero_point} over {levels} steps; the file was not made from FakeQuant ranges")
    return fitting


@dataclasses.dataclass
class _Head:
    output: int  # the head convolution's output tensor
    minimum: float  # its stored (nudged) range
    maximum: float
    step: float
    shift: float = 0.0  # raw range = stored range - shift

    def reach(self, end: float, stored: float) -> Optional[float]:
        """The shift that makes this head's raw range end at `end`, if within one step."""
        shift = stored - end
        return shift if abs(shift) < self.step else None


def _concat_bounded_ranges(model: _Model, activation_ranges: dict[int, tuple[str, tuple[float, float]]]
                           ) -> tuple[dict[int, tuple[np.float32, np.float32]], list[str]]:
    """Raw ranges of the heads under each concatenation, such that their union is its stored range.

    TF 2.21's converter gives a concatenation the union of its inputs' raw
    FakeQuant ranges. A .tflite stores the heads' ranges nudged (shifted by
    less than a step, both ends alike) and the concatenation's range as TOCO
    computed it from the raw ones. So each head whose stored range passes the
    concatenation's is shifted back inside, and the heads closest to its ends
    are shifted to reach them. A shift over half a step changes the head's
    zero point by one: TOCO truncated zero points where FakeQuant rounds, and
    the concatenation, which all anchors go through, is the one kept exact.
    Returns the ranges and the names of the heads whose zero point moved.
    """
    bounded, moved = {}, []
    for index, op in enumerate(model.ops):
        if op != "CONCATENATION":
            continue
        # Where no range is stored (TF 2.x files), the quantized range stands in for it.
        concat_min, concat_max = _stored_range(model.quantization(model.subgraph.operators[index].outputs[0]),
                                               UINT8_STEPS, 0)
        heads = []
        for tensor in model.subgraph.operators[index].inputs:
            source = model.source(tensor)
            output = model.subgraph.operators[source[1]].outputs[0] if len(source) == 2 else None
            if output in activation_ranges:
                params = model.quantization(output)
                heads.append(_Head(output, *activation_ranges[output][1], params.scale))
        for head in heads:
            head.shift = max(0.0, head.maximum - concat_max)
        for end, stored in ((concat_max, lambda head: head.maximum), (concat_min, lambda head: head.minimum)):
            if any(stored(head) - head.shift == end for head in heads):
                continue
            reaching = [(head, shift) for head in heads if (shift := head.reach(end, stored(head))) is not None]
            if reaching:
                head, head.shift = min(reaching, key=lambda item: abs(item[1]))
        for head in heads:
            low, high = np.float64(head.minimum) - head.shift, np.float64(head.maximum) - head.shift
            params = model.quantization(head.output)
            # An end that bounds the concatenation stays put, unless this head bounds both (then both move).
            pinned = frozenset(name for name, value, end in (("min", low, concat_min), ("max", high, concat_max))
                               if value == end and (low, high) != (concat_min, concat_max))
            exact = _fitting_range(low, high, UINT8_STEPS, params, pinned)
            if exact is None:
                moved.append(flatbuffer_model.tensor_name(model.tensor(head.output)))
            bounded[head.output] = (exact or _fitting_range(low, high, UINT8_STEPS, params, pinned, False)
                                    or (np.float32(low), np.float32(high)))
    return bounded, moved
