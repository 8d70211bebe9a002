"""The ssd_tflite_model rule: frozen graph -> .tflite (TOCO's flags), with its contract and metadata."""

load("//tools:python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE")
load(":actions.bzl", "check_param_file_lines", "run_tool")
load(":constants.bzl", "CONTRACT_SUFFIX", "INPUT_ARRAY", "LABELS_SUFFIX", "OUTPUT_ARRAYS")
load(":providers.bzl", "SsdTfliteGraphInfo", "SsdTfliteModelInfo")

def _bool(value):
    return "true" if value else "false"

def _inference_type(ctx, graph):
    """TOCO's --inference_type: the attribute, else QUANTIZED_UINT8 for a calibrated graph, else FLOAT."""
    return ctx.attr.inference_type or ("QUANTIZED_UINT8" if graph.calibrated else "FLOAT")

def _converter_settings(ctx, graph):
    """TOCO's flags of the conversion, resolved from the attributes: the converter and the contract get these."""
    inference_type = _inference_type(ctx, graph)
    flags = ["--input_format=TENSORFLOW_GRAPHDEF", "--output_format=TFLITE"]
    if ctx.attr.input_shape:
        flags.append("--input_shapes=" + ",".join([str(dim) for dim in ctx.attr.input_shape]))
    flags.append("--input_arrays=" + INPUT_ARRAY)
    flags.append("--output_arrays=" + ",".join(OUTPUT_ARRAYS))
    flags.append("--inference_type=" + inference_type)
    if inference_type == "QUANTIZED_UINT8":
        flags.append("--mean_values=" + ctx.attr.mean_value)
        flags.append("--std_values=" + ctx.attr.std_value)
    if ctx.attr.default_ranges:
        flags.append("--default_ranges_min=" + ctx.attr.default_ranges[0])
        flags.append("--default_ranges_max=" + ctx.attr.default_ranges[1])
    if ctx.attr.change_concat_input_ranges:
        flags.append("--change_concat_input_ranges")
    if ctx.attr.allow_custom_ops:
        flags.append("--allow_custom_ops")
    if ctx.attr.ignore_weights_narrow_range:
        flags.append("--ignore_weights_narrow_range")
    return flags

def _contract_action(ctx, graph, contract, labels):
    args = ctx.actions.args()
    args.add("--synthetic=" + _bool(graph.synthetic))
    args.add("--pipeline_config_path", graph.pipeline_config)
    args.add("--config_override=" + graph.config_override)
    args.add_all(_converter_settings(ctx, graph))
    args.add("--inference_type_stated=" + _bool(ctx.attr.inference_type))
    args.add("--embed_input_normalization=" + _bool(graph.embed_input_normalization))
    args.add("--calibrated=" + _bool(graph.calibrated))
    args.add_all(graph.postprocessing_flags)
    inputs = [graph.pipeline_config]
    if ctx.file.labels:
        args.add("--labels", ctx.file.labels)
        inputs.append(ctx.file.labels)
    args.add("--contract_out", contract)
    args.add("--labels_out", labels)
    run_tool(
        ctx,
        ctx.attr._contract,
        args,
        inputs = depset(inputs),
        outputs = [contract, labels],
        mnemonic = "SsdModelContract",
        progress_message = "Checking the model contract of %s against its config" % ctx.label,
    )

def _convert_action(ctx, graph, tflite):
    args = ctx.actions.args()

    # TOCO's flags take `--flag=value` only.
    args.add(graph.graph, format = "--input_file=%s")
    args.add(tflite, format = "--output_file=%s")
    args.add_all(_converter_settings(ctx, graph))
    check_param_file_lines(ctx.attr.converter, "converter_args", ctx.attr.converter_args)
    args.add_all(ctx.attr.converter_args)
    run_tool(
        ctx,
        ctx.attr.converter,
        args,
        inputs = depset([graph.graph]),
        outputs = [tflite],
        mnemonic = "TocoConvert",
        progress_message = "Converting %s to TFLite (%s)" % (ctx.label, _inference_type(ctx, graph)),
    )

def _metadata_action(ctx, graph, converted, labels, contract, tflite):
    """Checks the converted model against its contract, then writes it with metadata embedded (or as it is)."""
    args = ctx.actions.args()
    args.add("--embed_metadata=" + _bool(ctx.attr.embed_metadata))
    args.add("--input_file", converted)
    args.add("--output_file", tflite)
    args.add("--labels", labels)
    args.add("--contract", contract)
    args.add("--name", ctx.label.name)
    description = "SSD detector converted by rules_ssd_tflite from {}.".format(graph.checkpoint)
    if graph.synthetic:
        description += " Synthetic checkpoint: random weights, its detections mean nothing."
    args.add("--description", description)
    args.add("--version", ctx.attr.model_version)
    run_tool(
        ctx,
        ctx.attr._metadata_populator,
        args,
        inputs = depset([converted, labels, contract]),
        outputs = [tflite],
        mnemonic = "SsdTfliteMetadata" if ctx.attr.embed_metadata else "SsdModelCheck",
        progress_message = ("Embedding TFLite metadata in %s" if ctx.attr.embed_metadata else "Checking %s against its model contract") % ctx.label,
    )

# The converter flags that converter_args may not give, and what to use instead: the rule sets them from
# its attributes, or they change the model's interface (files, formats, tensors, types, shapes, input
# normalization, ranges), which the model contract and the embedded metadata describe.
_RULE_FLAGS = {
    "input_file": "set graph",
    "savedmodel_directory": "set graph",
    "output_file": "the rule writes <name>.tflite",
    "input_format": "the rule converts a TENSORFLOW_GRAPHDEF",
    "output_format": "the rule writes TFLITE",
    "input_array": "the rule converts the exported graph's input",
    "input_arrays": "the rule converts the exported graph's input",
    "output_array": "the rule converts the exported graph's outputs",
    "output_arrays": "the rule converts the exported graph's outputs",
    "inference_type": "set inference_type",
    "inference_input_type": "set inference_type",
    "inference_output_type": "set inference_type",
    "input_type": "set inference_type",
    "input_types": "set inference_type",
    "input_data_type": "set inference_type",
    "input_data_types": "set inference_type",
    "input_shape": "set input_shape",
    "input_shapes": "set input_shape",
    "mean_value": "set mean_value",
    "mean_values": "set mean_value",
    "std_value": "set std_value",
    "std_values": "set std_value",
    "default_ranges_min": "set default_ranges",
    "default_ranges_max": "set default_ranges",
    "change_concat_input_ranges": "set change_concat_input_ranges",
    "allow_custom_ops": "set allow_custom_ops",
    "ignore_weights_narrow_range": "set ignore_weights_narrow_range",
    "arrays_extra_info_file": "set input_shape and default_ranges",
    "batch_size": "the rule converts a batch of one image",
    "variable_batch": "the rule converts a batch of one image",
    "rnn_states": "the rule converts the exported graph's input",
    "model_flags_file": "set each of its flags by its attribute",
    "flagfile": "give the flags themselves in converter_args",
}

def _check_converter_args(converter_args):
    """Refuses converter_args that set what the rule sets (absl also takes -flag and --noflag)."""
    for arg in converter_args:
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=")[0]
        if name not in _RULE_FLAGS and name.startswith("no") and name[len("no"):] in _RULE_FLAGS:
            name = name[len("no"):]
        if name in _RULE_FLAGS:
            fail(("converter_args: '{}' would change what the rule sets and the model contract and " +
                  "metadata describe; {} instead").format(arg, _RULE_FLAGS[name]), attr = "converter_args")

def _is_number(text):
    """Whether `text` reads as a decimal number (Starlark here has no float parsing)."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return digits != "" and digits.count(".") <= 1 and digits.replace(".", "").isdigit()

def _validate_attributes(ctx, graph):
    """Fails analysis, naming the attribute, on combinations that would only fail (or mislead) at execution."""
    for name in ("mean_value", "std_value"):
        value = getattr(ctx.attr, name)
        if not _is_number(value):
            fail("{} must be a number, got '{}'".format(name, value), attr = name)
    if ctx.attr.std_value.startswith("-") or ctx.attr.std_value.lstrip("+").replace(".", "").replace("0", "") == "":
        fail("std_value must be positive (uint8 steps per real unit), got '{}'".format(ctx.attr.std_value), attr = "std_value")
    whole, _, fraction = ctx.attr.mean_value.lstrip("+").partition(".")
    if _inference_type(ctx, graph) == "QUANTIZED_UINT8" and not (
        whole.isdigit() and int(whole) <= 255 and fraction.replace("0", "") == ""
    ):
        fail("mean_value is a uint8 input's zero point, an integer from 0 to 255; got '{}'".format(ctx.attr.mean_value), attr = "mean_value")
    for value in ctx.attr.default_ranges:
        if not _is_number(value):
            fail("default_ranges takes two numbers, [min, max]; got '{}'".format(value), attr = "default_ranges")
    if ctx.attr.default_ranges and len(ctx.attr.default_ranges) != 2:
        fail("default_ranges takes [min, max]", attr = "default_ranges")
    if ctx.attr.input_shape and (len(ctx.attr.input_shape) != 4 or ctx.attr.input_shape[0] != 1 or
                                 ctx.attr.input_shape[3] != 3 or min(ctx.attr.input_shape) < 1):
        fail("input_shape is [1, height, width, 3], got {}".format(ctx.attr.input_shape), attr = "input_shape")
    if graph.calibrated:
        if ctx.attr.inference_type == "FLOAT":
            fail(("{} is calibrated (calibration_images): its FakeQuant ranges are for a QUANTIZED_UINT8 " +
                  "build. Convert the graph of the same checkpoint without calibration_images for FLOAT.").format(
                ctx.attr.graph.label,
            ), attr = "inference_type")
        if ctx.attr.default_ranges:
            fail(("{} is calibrated (calibration_images): its ranges are measured, so default_ranges would " +
                  "be unused. Drop default_ranges.").format(ctx.attr.graph.label), attr = "default_ranges")
    if ctx.attr.ignore_weights_narrow_range and _inference_type(ctx, graph) == "FLOAT":
        fail(
            "ignore_weights_narrow_range changes how weights are quantized: it needs a QUANTIZED_UINT8 build",
            attr = "ignore_weights_narrow_range",
        )
    _check_converter_args(ctx.attr.converter_args)

def _ssd_tflite_model_impl(ctx):
    graph = ctx.attr.graph[SsdTfliteGraphInfo]
    _validate_attributes(ctx, graph)
    tflite = ctx.actions.declare_file(ctx.label.name + ".tflite")
    labels = ctx.actions.declare_file(ctx.label.name + LABELS_SUFFIX)
    contract = ctx.actions.declare_file(ctx.label.name + CONTRACT_SUFFIX)
    _contract_action(ctx, graph, contract, labels)
    converted = ctx.actions.declare_file(ctx.label.name + "_converted.tflite")
    _convert_action(ctx, graph, converted)
    _metadata_action(ctx, graph, converted, labels, contract, tflite)
    files = [tflite, graph.graph, labels, contract]
    return [
        DefaultInfo(files = depset(files), runfiles = ctx.runfiles(files = files)),
        OutputGroupInfo(tflite = depset([tflite]), graph = depset([graph.graph])),
        SsdTfliteModelInfo(
            tflite = tflite,
            graph = graph.graph,
            labels = labels,
            contract = contract,
            input_array = INPUT_ARRAY,
            output_arrays = OUTPUT_ARRAYS,
            inference_type = _inference_type(ctx, graph),
            synthetic = graph.synthetic,
        ),
    ]

ssd_tflite_model = rule(
    implementation = _ssd_tflite_model_impl,
    doc = """Converts an exported SSD graph (`ssd_tflite_graph`) into a `detect.tflite`-style model.

The second half of the classic recipe: the converter with TOCO's flags, every
one of them built at analysis (`bazel aquery` shows them). Beside it, the
converter's settings are checked against the pipeline.config and the model
contract is written: what the model takes and gives. TFLite Model Metadata,
made from the contract, is embedded once the converted model is checked to be
what the contract says. Outputs `<name>.tflite`, `<name>_labels.txt` and
`<name>_contract.json`, and provides SsdTfliteModelInfo.""",
    attrs = {
        "graph": attr.label(
            mandatory = True,
            providers = [SsdTfliteGraphInfo],
            doc = "The exported graph: an `ssd_tflite_graph`. Float and uint8 builds of one checkpoint share it.",
        ),
        "input_shape": attr.int_list(
            doc = "Converter --input_shapes, [1, height, width, 3]; default: the graph's own input shape " +
                  "(the config's fixed_shape_resizer).",
        ),
        "inference_type": attr.string(
            values = ["", "FLOAT", "QUANTIZED_UINT8"],
            doc = "Converter --inference_type. Default: QUANTIZED_UINT8 for a calibrated graph, else FLOAT; a " +
                  "quantization-aware config (graph_rewriter.quantization) must state it.",
        ),
        "mean_value": attr.string(default = "128", doc = "Converter --mean_values of the uint8 input."),
        "std_value": attr.string(default = "128", doc = "Converter --std_values of the uint8 input."),
        "default_ranges": attr.string_list(doc = "[min, max]: converter --default_ranges_min/max for tensors without FakeQuant ranges."),
        "change_concat_input_ranges": attr.bool(default = False, doc = "Converter --change_concat_input_ranges."),
        "allow_custom_ops": attr.bool(default = True, doc = "Converter --allow_custom_ops (needed for TFLite_Detection_PostProcess)."),
        "labels": attr.label(
            allow_single_file = True,
            doc = "Class names, one per line in class-id order, or the Object Detection API's label_map.pbtxt " +
                  "(ids 1..num_classes; gaps become ???); default class_1..class_N.",
        ),
        "converter": attr.label(
            default = "//py:converter_tool",
            cfg = "exec",
            doc = "Converter taking TOCO's flags: ours (a persistent worker on this rule set's Python " +
                  "toolchain) or any executable, e.g. a TensorFlow source tree's //tensorflow/lite/toco:toco.",
        ),
        "converter_args": attr.string_list(
            doc = "Extra converter flags, such as a TensorFlow source tree's toco's debugging flags. Not the " +
                  "flags the rule sets from its attributes, nor others that change the model's interface " +
                  "(inference_input_type, input_arrays, flagfile, ...): the analysis refuses them, naming the " +
                  "attribute to set instead.",
        ),
        "ignore_weights_narrow_range": attr.bool(
            default = False,
            doc = "Converter --ignore_weights_narrow_range (QUANTIZED_UINT8 only): quantize weights over 256 " +
                  "levels, as TOCO did until mid-2018, instead of the 255 their FakeQuant's narrow_range asks for.",
        ),
        "embed_metadata": attr.bool(
            default = True,
            doc = "Embed TFLite Model Metadata (input normalization, the four outputs, the labels file), which " +
                  "MediaPipe Tasks' ObjectDetector requires. False writes the converter's output as it is. Either " +
                  "way the converted model is first checked to be what its contract describes.",
        ),
        "model_version": attr.string(default = "1", doc = "Version recorded in the embedded metadata."),
        "_contract": attr.label(default = "//py:contract_tool", cfg = "exec"),
        "_metadata_populator": attr.label(default = "//py:metadata_tool", cfg = "exec"),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
    provides = [SsdTfliteModelInfo],
)
