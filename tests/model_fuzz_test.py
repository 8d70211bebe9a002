"""Structural fuzzing of the .tflite readers: a real model's tables mutated through the object API.

Byte flips (fuzz_test.py) mostly break the flatbuffer itself. Here it stays
well-formed and its content becomes inconsistent, as a buggy converter or a
hand edit makes it. Mutations, drawn by hypothesis, of a real TOCO model
(with TFLite metadata and its labels zip added, as populate_metadata does):
  - indices (operator code, buffer, tensor, subgraph input/output) set out of
    range or to another valid value;
  - tensor types changed; quantization scales, zero points and ranges set to
    0, negative, nan, inf or huge, or given other lengths;
  - buffers emptied, truncated, extended or swapped;
  - the post-process custom options replaced by garbage or other flexbuffers;
  - edges rewired (cycles, self-loops, dangling inputs, two writers), operator
    codes changed, names and custom codes made invalid UTF-8.
Each mutated model goes to (a) tflite_to_checkpoint's path (reconstruction
with the model's own pipeline.config, then the checkpoint folder), (b)
detect's (detection.open_detector, then a detection), (c) the metadata reader
(tflite_metadata.read). Each must end in a correct result or a UserError
(counted in OUTCOMES per target), never another exception, and leave no
partial output. The faults that once ended in tracebacks are regression tests.
FUZZ_EXAMPLES sets the examples per target, as in fuzz_test.py: 50 in the
quick suite, 200 in CI.
"""

import collections
import dataclasses
import functools
import math
import os
import shutil
import tempfile

import numpy as np
from absl.testing import absltest
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import flexbuffers
from hypothesis import given
from hypothesis import strategies as st

import testing
from fuzzing import FUZZ, OUTCOMES, outcome
from ssd_tflite import (checkpoint_files, detection, flatbuffer_model, pipeline_config, postprocess_options,
                        reconstruction, tflite_metadata)
from ssd_tflite.errors import InputError, UserError
from ssd_tflite.images import load_image

MODEL = "real_models/ssd_mobilenet_v1_075_quant_8class_2019_02.tflite"
CONFIG = "real_models/ssd_mobilenet_v1_075_quant_8class.pipeline.config"
PHOTO = "real_models/pets.jpg"
LABELS = tuple(f"class_{index}" for index in range(1, 9))
METADATA = tflite_metadata.DetectorMetadata("ssd_mobilenet_v1_075_quant_8class", "A real TOCO model (2019-02).", "1",
                                            (128.0,) * 3, (128.0,) * 3, LABELS)
CHECKPOINT_FILES = sorted([checkpoint_files.STATE_FILE, checkpoint_files.CONFIG_FILE,
                           checkpoint_files.PREFIX + ".index", checkpoint_files.PREFIX + ".data-00000-of-00001"])


@functools.cache
def described_model() -> bytes:
    """The real model with TFLite metadata, without the labels zip (which packing would drop)."""
    with open(testing.testdata(MODEL), "rb") as model_file:
        content = model_file.read()
    return flatbuffer_model.with_metadata(content, MODEL, tflite_metadata.METADATA_NAME,
                                          tflite_metadata.metadata_buffer(METADATA, 300, 300))


def fresh_model() -> schema.ModelT:
    """A new, unchecked copy of the model to mutate."""
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(described_model(), 0))


def written(model: schema.ModelT, folder: str) -> str:
    """The model packed, with its labels zip, as `folder`/detect.tflite."""
    path = os.path.join(folder, "detect.tflite")
    with open(path, "wb") as out:
        out.write(tflite_metadata.with_labels_zip(flatbuffer_model.pack(model), LABELS))
    return path


def recover(model_path: str, output: str) -> reconstruction.Reconstruction:
    """What tflite_to_checkpoint does: reconstruct with the model's config, write the checkpoint folder."""
    config = testing.testdata(CONFIG)
    recovered = reconstruction.reconstruct(model_path, pipeline_config.read(config))
    checkpoint_files.write_directory(output, recovered.values, config)
    return recovered


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where things are in the unmutated model (mutations keep every index of it in place)."""
    operators: dict[str, list[int]]  # operator indices by name
    postprocess_code: int
    options: dict  # the post-process custom options
    constants: list[int]  # tensor indices
    quantized: list[int]


@functools.cache
def layout() -> Layout:
    model = fresh_model()
    subgraph = model.subgraphs[0]
    operators = collections.defaultdict(list)
    for index, operator in enumerate(subgraph.operators):
        operators[flatbuffer_model.opcode_name(model, operator)].append(index)
    postprocess = subgraph.operators[operators[flatbuffer_model.POSTPROCESS_CUSTOM_CODE.decode()][0]]
    return Layout(dict(operators), postprocess.opcodeIndex,
                  flexbuffers.Loads(bytes(bytearray(postprocess.customOptions))),
                  [index for index, tensor in enumerate(subgraph.tensors)
                   if flatbuffer_model.constant(model, tensor) is not None],
                  [index for index, tensor in enumerate(subgraph.tensors) if flatbuffer_model.quantization(tensor)])


def operator(model: schema.ModelT, name: str) -> tuple[int, schema.OperatorT]:
    """The first operator named `name`: its index and itself."""
    index = layout().operators[name][0]
    return index, model.subgraphs[0].operators[index]


def first_convolution(model: schema.ModelT) -> schema.OperatorT:
    return operator(model, "CONV_2D")[1]


def postprocess(model: schema.ModelT) -> schema.OperatorT:
    return operator(model, flatbuffer_model.POSTPROCESS_CUSTOM_CODE.decode())[1]


def options_of(model: schema.ModelT) -> dict:
    """The post-process options of a model that loaded (so they are valid)."""
    return postprocess_options.decode(bytes(bytearray(postprocess(model).customOptions)))


def tensor_label(model: schema.ModelT, index: int) -> str:
    return f"tensor {index} '{flatbuffer_model.tensor_name(model.subgraphs[0].tensors[index])}'"


# The faults that ended in tracebacks before the consistency checks: (mutation, what the error must say).
def opcode_index_out_of_range(model: schema.ModelT) -> str:
    model.subgraphs[0].operators[0].opcodeIndex = len(model.operatorCodes)
    return f"operator 0: operator code index {len(model.operatorCodes)} is past the {len(model.operatorCodes)}"


def buffer_index_out_of_range(model: schema.ModelT) -> str:
    weights = int(first_convolution(model).inputs[1])
    model.subgraphs[0].tensors[weights].buffer = len(model.buffers) + 5
    return f"{tensor_label(model, weights)}: buffer {len(model.buffers) + 5} is past the {len(model.buffers)} buffers"


def float16_weights(model: schema.ModelT) -> str:
    weights = int(first_convolution(model).inputs[1])
    model.subgraphs[0].tensors[weights].type = schema.TensorType.FLOAT16
    return f"{tensor_label(model, weights)}, is a constant of type FLOAT16, which these tools do not read"


def empty_bias_buffer(model: schema.ModelT) -> str:
    bias = int(first_convolution(model).inputs[2])
    model.buffers[model.subgraphs[0].tensors[bias].buffer].data = None
    return f"its input {tensor_label(model, bias)} is never written"


def zero_weight_scale(model: schema.ModelT) -> str:
    weights = int(first_convolution(model).inputs[1])
    model.subgraphs[0].tensors[weights].quantization.scale = np.zeros(1, np.float32)
    return f"{tensor_label(model, weights)}: quantization scale 0.0 is not a finite number > 0"


def convolution_without_bias(model: schema.ModelT) -> str:
    first_convolution(model).inputs = first_convolution(model).inputs[:2]
    return f"operator {operator(model, 'CONV_2D')[0]} (CONV_2D) has no bias input"


def non_utf8_custom_code(model: schema.ModelT) -> str:
    code = layout().postprocess_code
    model.operatorCodes[code].customCode = b"TFLite_Detection_PostProcess\xff"
    return f"operator code {code}: its custom code b'TFLite_Detection_PostProcess\\xff' is not UTF-8"


def reshape_feeding_itself(model: schema.ModelT) -> str:
    index, reshape = operator(model, "RESHAPE")
    reshape.inputs = [int(reshape.outputs[0]), *reshape.inputs[1:]]
    return f"the data flow has a cycle through operator {index} (RESHAPE)"


def garbage_postprocess_options(model: schema.ModelT) -> str:
    # A flexbuffer map of the right num_classes only: before the checks, a KeyError on max_detections.
    postprocess(model).customOptions = np.frombuffer(bytes(flexbuffers.Dumps({"num_classes": 8})), np.uint8)
    return "(TFLite_Detection_PostProcess): custom options: max_detections, max_classes_per_detection, nms"


REGRESSIONS = (opcode_index_out_of_range, buffer_index_out_of_range, float16_weights, empty_bias_buffer,
               zero_weight_scale, convolution_without_bias, non_utf8_custom_code, reshape_feeding_itself,
               garbage_postprocess_options)

# Mutations, each (draw, model) -> None.
UNSIGNED_MAX, INT32_MIN, INT32_MAX = 2 ** 32 - 1, -2 ** 31, 2 ** 31 - 1
SCALES = (0.0, -1.0, -0.0, math.nan, math.inf, -math.inf, 3.4e38, 1e-45, 1e-30, 0.5)
ZERO_POINTS = (-1, 0, 127, 128, 255, 256, 2 ** 40, -2 ** 63, 2 ** 63 - 1)
RANGE_ENDS = (math.nan, math.inf, -math.inf, -3e38, 3e38, 0.0, -1.0, 1.0)
OPTION_VALUES = (0, -1, 1, 8, 91, 2 ** 31, 2 ** 40, math.nan, math.inf, -math.inf, -2.5, 0.0, 1e30, True, False,
                 "text", [1, 2], {"a": 1})


def _index(draw, size: int, signed: bool) -> int:
    """Another valid index of a list of `size`, or one out of its range."""
    choices = [st.integers(0, max(size - 1, 0)), st.integers(size, size + 3), st.just(INT32_MAX)]
    choices += [st.just(-1), st.integers(-5, -2), st.just(INT32_MIN)] if signed else [st.just(UNSIGNED_MAX)]
    return draw(st.one_of(choices))


def _pick(draw, items: list):
    return items[draw(st.integers(0, len(items) - 1))]


def _first(values, default):
    return default if values is None or len(values) == 0 else values[0]


def _ints(vector) -> list[int]:
    return [] if vector is None else [int(value) for value in vector]


def _with(values, position: int, value) -> list[int]:
    changed = _ints(values)
    changed[position] = value
    return changed


def mutate_opcode_index(draw, model: schema.ModelT) -> None:
    _pick(draw, model.subgraphs[0].operators).opcodeIndex = _index(draw, len(model.operatorCodes), signed=False)


def mutate_buffer_index(draw, model: schema.ModelT) -> None:
    _pick(draw, model.subgraphs[0].tensors).buffer = _index(draw, len(model.buffers), signed=False)


def mutate_tensor_index(draw, model: schema.ModelT) -> None:
    mutated = _pick(draw, model.subgraphs[0].operators)
    field = draw(st.sampled_from(["inputs", "outputs"]))
    indices = getattr(mutated, field)
    position = draw(st.integers(0, len(indices) - 1))
    setattr(mutated, field, _with(indices, position, _index(draw, len(model.subgraphs[0].tensors), signed=True)))


def mutate_subgraph_io(draw, model: schema.ModelT) -> None:
    subgraph = model.subgraphs[0]
    field = draw(st.sampled_from(["inputs", "outputs"]))
    indices = getattr(subgraph, field)
    if len(indices) and draw(st.booleans()):
        position = draw(st.integers(0, len(indices) - 1))
        setattr(subgraph, field, _with(indices, position, _index(draw, len(subgraph.tensors), signed=True)))
    elif draw(st.booleans()):  # one more
        setattr(subgraph, field, [*_ints(indices), draw(st.integers(0, len(subgraph.tensors) - 1))])
    else:  # one fewer
        setattr(subgraph, field, _ints(indices)[:-1])


def mutate_tensor_type(draw, model: schema.ModelT) -> None:
    known = sorted(code for name, code in vars(schema.TensorType).items() if not name.startswith("_"))
    _pick(draw, model.subgraphs[0].tensors).type = draw(st.sampled_from([*known, 100, 127, -1]))


def mutate_quantization(draw, model: schema.ModelT) -> None:
    params = model.subgraphs[0].tensors[_pick(draw, layout().quantized)].quantization
    field = draw(st.sampled_from(["scale", "zeroPoint", "min", "max", "lengths", "axis"]))
    if field == "scale":
        params.scale = np.array([draw(st.sampled_from(SCALES))], np.float32)
    elif field == "zeroPoint":
        params.zeroPoint = np.array([draw(st.sampled_from(ZERO_POINTS))], np.int64)
    elif field in ("min", "max"):
        setattr(params, field, np.array([draw(st.sampled_from(RANGE_ENDS))], np.float32))
    elif field == "lengths":
        kind = draw(st.sampled_from(["two scales", "no zero point", "no scale", "two ranges"]))
        if kind == "two scales":
            params.scale = np.array([_first(params.scale, 1.0)] * 2, np.float32)
            params.zeroPoint = np.array([_first(params.zeroPoint, 0)] * 2, np.int64)
        elif kind == "no zero point":
            params.zeroPoint = None
        elif kind == "no scale":
            params.scale = None
        else:
            params.min = np.array([-1.0, -1.0], np.float32)
    else:
        params.quantizedDimension = draw(st.integers(-1, 5))


def mutate_buffer_data(draw, model: schema.ModelT) -> None:
    holding = [buffer for buffer in model.buffers if buffer.data is not None and len(buffer.data)]
    if not holding:
        return
    buffer = _pick(draw, holding)
    kind = draw(st.sampled_from(["empty", "none", "truncated", "extended", "swapped", "same size swapped"]))
    if kind == "empty":
        buffer.data = np.zeros(0, np.uint8)
    elif kind == "none":
        buffer.data = None
    elif kind == "truncated":
        buffer.data = buffer.data[:draw(st.integers(0, len(buffer.data) - 1))]
    elif kind == "extended":
        buffer.data = np.concatenate([buffer.data, np.zeros(draw(st.integers(1, 8)), np.uint8)])
    else:
        others = [other for other in holding if kind == "swapped" or len(other.data) == len(buffer.data)]
        other = _pick(draw, others)
        buffer.data, other.data = other.data, buffer.data


def mutate_custom_options(draw, model: schema.ModelT) -> None:
    kind = draw(st.sampled_from(["garbage", "truncated", "changed entry", "removed entry", "not a map"]))
    options = dict(layout().options)
    raw = bytes(flexbuffers.Dumps(options))
    if kind == "garbage":
        raw = draw(st.binary(max_size=400))
    elif kind == "truncated":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind in ("changed entry", "removed entry"):
        key = draw(st.sampled_from(sorted(options)))
        if kind == "removed entry":
            del options[key]
        else:
            options[key] = draw(st.sampled_from(OPTION_VALUES))
        raw = bytes(flexbuffers.Dumps(options))
    else:
        raw = bytes(flexbuffers.Dumps(draw(st.sampled_from([[1, 2, 3], 5, "options", 2.5, None]))))
    postprocess(model).customOptions = np.frombuffer(raw, np.uint8)


def mutate_edge(draw, model: schema.ModelT) -> None:
    subgraph = model.subgraphs[0]
    index = draw(st.integers(0, len(subgraph.operators) - 1))
    rewired = subgraph.operators[index]
    position = draw(st.integers(0, len(rewired.inputs) - 1))
    kind = draw(st.sampled_from(["self-loop", "later output", "dangling", "second writer", "writes a constant",
                                 "writes the input"]))
    if kind == "self-loop":
        rewired.inputs = _with(rewired.inputs, position, int(rewired.outputs[0]))
    elif kind == "later output":
        later = subgraph.operators[draw(st.integers(index, len(subgraph.operators) - 1))]
        rewired.inputs = _with(rewired.inputs, position, int(later.outputs[0]))
    elif kind == "dangling":
        tensor = schema.TensorT()
        tensor.shape, tensor.type, tensor.buffer, tensor.name = [1, 4], schema.TensorType.UINT8, 0, b"dangling"
        subgraph.tensors.append(tensor)
        rewired.inputs = _with(rewired.inputs, position, len(subgraph.tensors) - 1)
    elif kind == "second writer":
        rewired.outputs = _with(rewired.outputs, 0, int(_pick(draw, subgraph.operators).outputs[0]))
    elif kind == "writes a constant":
        rewired.outputs = _with(rewired.outputs, 0, _pick(draw, layout().constants))
    else:
        rewired.outputs = _with(rewired.outputs, 0, int(_first(subgraph.inputs, 0)))


def mutate_name(draw, model: schema.ModelT) -> None:
    invalid = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]))
    kind = draw(st.sampled_from(["tensor", "custom code", "metadata"]))
    if kind == "tensor":
        tensor = _pick(draw, model.subgraphs[0].tensors)
        tensor.name = bytes(tensor.name) + invalid
    elif kind == "custom code":
        code = model.operatorCodes[layout().postprocess_code]
        code.customCode = bytes(code.customCode or b"") + invalid
    else:
        entry = _pick(draw, model.metadata)
        entry.name = bytes(entry.name) + invalid


def mutate_operator_code(draw, model: schema.ModelT) -> None:
    code = _pick(draw, model.operatorCodes)
    builtin = draw(st.sampled_from([schema.BuiltinOperator.ADD, schema.BuiltinOperator.CONV_2D,
                                    schema.BuiltinOperator.LOGISTIC, schema.BuiltinOperator.RESHAPE,
                                    schema.BuiltinOperator.CUSTOM, schema.BuiltinOperator.DEQUANTIZE, 250, 10000]))
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    if builtin == schema.BuiltinOperator.CUSTOM:
        code.customCode = draw(st.sampled_from([None, b"", b"TFLite_Detection_PostProcess", b"Other"]))


def plausible_quantization(draw, model: schema.ModelT) -> None:
    """A scale, zero point or range changed to another valid value."""
    tensor = model.subgraphs[0].tensors[_pick(draw, layout().quantized)]
    params = tensor.quantization
    field = draw(st.sampled_from(["scale", "zeroPoint", "range"]))
    if field == "scale" and params.scale is not None:
        params.scale = np.asarray(params.scale, np.float32) * np.float32(draw(st.sampled_from([0.5, 1.0000001, 3.0])))
    elif field == "zeroPoint" and tensor.type == schema.TensorType.UINT8:
        params.zeroPoint = np.array([draw(st.integers(0, 255))], np.int64)
    elif params.min is not None and len(params.min):
        shift = np.float32(draw(st.sampled_from([-1.0, -0.01, 0.01, 1.0])))
        params.min, params.max = params.min + shift, params.max + shift


def plausible_options(draw, model: schema.ModelT) -> None:
    """One post-process option changed to another valid value."""
    options = dict(layout().options)
    key, values = draw(st.sampled_from([
        ("max_detections", st.integers(1, 100)), ("max_classes_per_detection", st.integers(1, 8)),
        ("detections_per_class", st.integers(0, 100)), ("use_regular_nms", st.booleans()),
        ("num_classes", st.integers(1, 90)), ("nms_iou_threshold", st.floats(0.0, 1.0)),
        ("nms_score_threshold", st.floats(-1.0, 1.0)), ("y_scale", st.floats(0.5, 20.0))]))
    options[key] = draw(values)
    postprocess(model).customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options)), np.uint8)


def swapped_constants(draw, model: schema.ModelT) -> None:
    """Two constants of one shape and type trade their buffers."""
    tensors = model.subgraphs[0].tensors
    kind = lambda index: (tensors[index].type, tuple(_ints(tensors[index].shape)))  # noqa: E731
    first = _pick(draw, layout().constants)
    alike = [index for index in layout().constants if kind(index) == kind(first)]
    second = _pick(draw, alike)
    tensors[first].buffer, tensors[second].buffer = tensors[second].buffer, tensors[first].buffer


# Mutations that keep the model consistent: it must load, and give a result or a named mismatch.
PLAUSIBLE = {"plausible quantization": plausible_quantization, "plausible options": plausible_options,
             "swapped constants": swapped_constants}
MUTATIONS = {
    "operator code index": mutate_opcode_index, "buffer index": mutate_buffer_index,
    "tensor index": mutate_tensor_index, "subgraph io": mutate_subgraph_io, "tensor type": mutate_tensor_type,
    "quantization": mutate_quantization, "buffer data": mutate_buffer_data, "custom options": mutate_custom_options,
    "edge": mutate_edge, "name": mutate_name, "operator code": mutate_operator_code,
}


@st.composite
def mutated_model(draw) -> tuple[schema.ModelT, tuple[str, ...]]:
    """The model with one to three mutations (all plausible, or of any kind), and their kinds."""
    model = fresh_model()
    mutations = PLAUSIBLE if draw(st.integers(0, 3)) == 0 else {**MUTATIONS, **PLAUSIBLE}
    kinds = tuple(draw(st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=3)))
    for kind in kinds:
        mutations[kind](draw, model)
    return model, kinds


class ModelFuzzTest(absltest.TestCase):

    @classmethod
    def tearDownClass(cls):
        print("model fuzz outcomes:", dict(sorted(OUTCOMES.items())))
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
        self.addCleanup(shutil.rmtree, self.work)

    def test_regressions_name_the_fault(self):
        for mutation in REGRESSIONS:
            with self.subTest(mutation.__name__):
                model = fresh_model()
                expected = mutation(model)
                output = os.path.join(self.work, mutation.__name__)
                with self.assertRaises(InputError) as raised:
                    recover(written(model, self.work), output)
                self.assertIn(expected, str(raised.exception))
                self.assertFalse(os.path.exists(output))

    def test_unmutated_model_passes(self):
        path = written(fresh_model(), self.work)
        recover(path, os.path.join(self.work, "out"))
        self.assertEqual(sorted(os.listdir(os.path.join(self.work, "out"))), CHECKPOINT_FILES)
        self.assertEqual(tflite_metadata.read(path), METADATA)

    @FUZZ
    @given(mutated_model())
    def test_tflite_to_checkpoint(self, mutated):
        model, _ = mutated
        work = tempfile.mkdtemp(dir=self.work)
        output = os.path.join(work, "recovered")
        result = outcome("tflite_to_checkpoint", lambda: recover(written(model, work), output))
        files = sorted(os.listdir(output)) if os.path.exists(output) else []
        self.assertEqual(files, [] if isinstance(result, UserError) else CHECKPOINT_FILES)
        if not isinstance(result, UserError):
            options = options_of(model)
            self.assertEqual((result.postprocessing.max_detections, result.postprocessing.use_regular_nms),
                             (options["max_detections"], bool(options.get("use_regular_nms", False))))

    @FUZZ
    @given(mutated_model())
    def test_detect(self, mutated):
        model, _ = mutated
        path = written(model, tempfile.mkdtemp(dir=self.work))
        image = load_image(testing.testdata(PHOTO))

        def run_detect():
            detector = detection.open_detector(path)
            return detector.detect(image, detector.labels, 0.0)

        found = outcome("detect", run_detect)
        if not isinstance(found, UserError):
            self.assertLessEqual(len(found), options_of(model)["max_detections"])

    @FUZZ
    @given(mutated_model())
    def test_metadata_reader(self, mutated):
        model, kinds = mutated
        path = written(model, tempfile.mkdtemp(dir=self.work))
        found = outcome("metadata", lambda: tflite_metadata.read(path))
        if not isinstance(found, UserError) and "buffer data" not in kinds:
            self.assertEqual(found, METADATA)


if __name__ == "__main__":
    absltest.main()
