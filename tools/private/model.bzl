"""The ssd_tflite_model rule: frozen graph -> .tflite (TOCO's flags), with contract and metadata."""

load("//tools:python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE")
load(":actions.bzl", "check_param_file_lines", "run_tool")
load(":constants.bzl", "INPUT_ARRAY", "OUTPUT_ARRAYS")
load(":providers.bzl", "SsdTfliteGraphInfo", "SsdTfliteModelInfo")

def _bool(value):
    return "true" if value else "false"

def _inference_type(ctx, graph):
    """TOCO's --inference_type: the attribute, else QUANTIZED_UINT8 for a calibrated graph, else FLOAT."""
    return ctx.attr.inference_type or ("QUANTIZED_UINT8" if graph.calibrated else "FLOAT")

def _contract_action(ctx, graph, metadata, labels):
    args = ctx.actions.args()
    args.add("--synthetic=" + _bool(graph.synthetic))
    args.add("--pipeline_config_path", graph.pipeline_config)
    args.add("--config_override=" + graph.config_override)
    args.add("--inference_type=" + ctx.attr.inference_type)
    args.add_joined("--input_shape", ctx.attr.input_shape, join_with = ",")
    args.add("--mean_value=" + ctx.attr.mean_value)
    args.add("--std_value=" + ctx.attr.std_value)
    if ctx.attr.default_ranges:
        args.add("--default_ranges_min=" + ctx.attr.default_ranges[0])
        args.add("--default_ranges_max=" + ctx.attr.default_ranges[1])
    args.add("--embed_input_normalization=" + _bool(graph.embed_input_normalization))
    args.add("--calibrated=" + _bool(graph.calibrated))
    args.add_all(graph.postprocessing_flags)
    inputs = [graph.pipeline_config]
    if ctx.file.labels:
        args.add("--labels", ctx.file.labels)
        inputs.append(ctx.file.labels)
    args.add("--metadata_out", metadata)
    args.add("--labels_out", labels)
    run_tool(
        ctx,
        ctx.attr._contract,
        args,
        inputs = depset(inputs),
        outputs = [metadata, labels],
        mnemonic = "SsdModelContract",
        progress_message = "Checking the model contract of %s against its config" % ctx.label,
    )

def _convert_action(ctx, graph, tflite):
    inference_type = _inference_type(ctx, graph)
    args = ctx.actions.args()

    # TOCO's flags take `--flag=value` only.
    args.add(graph.graph, format = "--input_file=%s")
    args.add(tflite, format = "--output_file=%s")
    args.add("--input_format=TENSORFLOW_GRAPHDEF")
    args.add("--output_format=TFLITE")
    if ctx.attr.input_shape:
        args.add_joined(ctx.attr.input_shape, join_with = ",", format_joined = "--input_shapes=%s")
    args.add("--input_arrays=" + INPUT_ARRAY)
    args.add_joined(OUTPUT_ARRAYS, join_with = ",", format_joined = "--output_arrays=%s")
    args.add("--inference_type=" + inference_type)
    if inference_type == "QUANTIZED_UINT8":
        args.add("--mean_values=" + ctx.attr.mean_value)
        args.add("--std_values=" + ctx.attr.std_value)
    if ctx.attr.default_ranges:
        args.add("--default_ranges_min=" + ctx.attr.default_ranges[0])
        args.add("--default_ranges_max=" + ctx.attr.default_ranges[1])
    if ctx.attr.change_concat_input_ranges:
        args.add("--change_concat_input_ranges")
    if ctx.attr.allow_custom_ops:
        args.add("--allow_custom_ops")
    if ctx.attr.ignore_weights_narrow_range:
        args.add("--ignore_weights_narrow_range")
    check_param_file_lines(ctx.attr.converter, "converter_args", ctx.attr.converter_args)
    args.add_all(ctx.attr.converter_args)
    run_tool(
        ctx,
        ctx.attr.converter,
        args,
        inputs = depset([graph.graph]),
        outputs = [tflite],
        mnemonic = "TocoConvert",
        progress_message = "Converting %s to TFLite (%s)" % (ctx.label, inference_type),
    )

def _metadata_action(ctx, graph, converted, labels, metadata, tflite):
    args = ctx.actions.args()
    args.add("--input_file", converted)
    args.add("--output_file", tflite)
    args.add("--labels", labels)
    args.add("--model_metadata", metadata)
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
        inputs = depset([converted, labels, metadata]),
        outputs = [tflite],
        mnemonic = "SsdTfliteMetadata",
        progress_message = "Embedding TFLite metadata in %s" % ctx.label,
    )

def _is_number(text):
    """Whether `text` reads as a decimal number (Starlark here has no float parsing)."""
    digits = text.lstrip("+-")
    return digits != "" and digits.count(".") <= 1 and digits.replace(".", "").isdigit()

def _validate_attributes(ctx, graph):
    """Fails analysis, naming the attribute, on combinations that would only fail (or mislead) at execution."""
    for name in ("mean_value", "std_value"):
        value = getattr(ctx.attr, name)
        if not _is_number(value):
            fail("{} must be a number, got '{}'".format(name, value), attr = name)
    if ctx.attr.std_value.lstrip("+-").replace(".", "").replace("0", "") == "":
        fail("std_value must not be 0", attr = "std_value")
    for value in ctx.attr.default_ranges:
        if not _is_number(value):
            fail("default_ranges takes two numbers, [min, max]; got '{}'".format(value), attr = "default_ranges")
    if ctx.attr.default_ranges and len(ctx.attr.default_ranges) != 2:
        fail("default_ranges takes [min, max]", attr = "default_ranges")
    if ctx.attr.input_shape and (len(ctx.attr.input_shape) != 4 or ctx.attr.input_shape[0] != 1 or
                                 ctx.attr.input_shape[3] != 3):
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

def _ssd_tflite_model_impl(ctx):
    graph = ctx.attr.graph[SsdTfliteGraphInfo]
    _validate_attributes(ctx, graph)
    tflite = ctx.actions.declare_file(ctx.label.name + ".tflite")
    labels = ctx.actions.declare_file(ctx.label.name + "_labels.txt")
    metadata = ctx.actions.declare_file(ctx.label.name + "_metadata.json")
    _contract_action(ctx, graph, metadata, labels)
    if ctx.attr.embed_metadata:
        converted = ctx.actions.declare_file(ctx.label.name + "_converted.tflite")
        _convert_action(ctx, graph, converted)
        _metadata_action(ctx, graph, converted, labels, metadata, tflite)
    else:
        _convert_action(ctx, graph, tflite)
    files = [tflite, graph.graph, labels, metadata]
    return [
        DefaultInfo(files = depset(files), runfiles = ctx.runfiles(files = files)),
        OutputGroupInfo(tflite = depset([tflite]), graph = depset([graph.graph])),
        SsdTfliteModelInfo(
            tflite = tflite,
            graph = graph.graph,
            labels = labels,
            metadata = metadata,
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
model contract is checked against the pipeline.config, and TFLite Model
Metadata is embedded. Outputs `<name>.tflite`, `<name>_labels.txt` and
`<name>_metadata.json`, and provides SsdTfliteModelInfo.""",
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
        "converter_args": attr.string_list(doc = "Extra converter flags."),
        "ignore_weights_narrow_range": attr.bool(
            default = False,
            doc = "Converter --ignore_weights_narrow_range (QUANTIZED_UINT8 only): quantize weights over 256 " +
                  "levels, as TOCO did until mid-2018, instead of the 255 their FakeQuant's narrow_range asks for.",
        ),
        "embed_metadata": attr.bool(
            default = True,
            doc = "Embed TFLite Model Metadata (input normalization, the four outputs, the labels file), which " +
                  "MediaPipe Tasks' ObjectDetector requires. False leaves the converter's output as it is.",
        ),
        "model_version": attr.string(default = "1", doc = "Version recorded in the embedded metadata."),
        "_contract": attr.label(default = "//py:contract_tool", cfg = "exec"),
        "_metadata_populator": attr.label(default = "//py:metadata_tool", cfg = "exec"),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
    provides = [SsdTfliteModelInfo],
)
