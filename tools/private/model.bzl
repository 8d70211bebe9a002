"""The ssd_tflite_model rule: checkpoint -> frozen export graph -> .tflite."""

load(":actions.bzl", "run_quietly", "run_tool", "tool_invocation")
load(":providers.bzl", "SsdCheckpointInfo", "SsdTfliteModelInfo", "checkpoint_prefix")
load(":python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE")
load(":release_settings.bzl", "SyntheticCheckpointsInfo")

INPUT_ARRAY = "normalized_input_image_tensor"
OUTPUT_ARRAYS = [
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1",
    "TFLite_Detection_PostProcess:2",
    "TFLite_Detection_PostProcess:3",
]

def _bool(value):
    return "true" if value else "false"

def _postprocessing_flags(attr):
    return [
        "--max_detections=%d" % attr.max_detections,
        "--max_classes_per_detection=%d" % attr.max_classes_per_detection,
        "--detections_per_class=%d" % attr.detections_per_class,
        "--use_regular_nms=" + _bool(attr.use_regular_nms),
    ]

def _contract_action(ctx, config, converter_flags, metadata, labels, synthetic):
    args = ctx.actions.args()
    args.add("--synthetic=" + _bool(synthetic))
    args.add("--pipeline_config_path", config)
    args.add("--config_override=" + ctx.attr.config_override)
    args.add("--inference_type=" + ctx.attr.inference_type)
    args.add("--input_shape=" + ",".join([str(dim) for dim in ctx.attr.input_shape]))
    args.add("--mean_value=" + ctx.attr.mean_value)
    args.add("--std_value=" + ctx.attr.std_value)
    if ctx.attr.default_ranges:
        args.add("--default_ranges_min=" + ctx.attr.default_ranges[0])
        args.add("--default_ranges_max=" + ctx.attr.default_ranges[1])
    args.add("--change_concat_input_ranges=" + _bool(ctx.attr.change_concat_input_ranges))
    args.add("--allow_custom_ops=" + _bool(ctx.attr.allow_custom_ops))
    args.add("--embed_input_normalization=" + _bool(ctx.attr.embed_input_normalization))
    args.add("--calibrated=" + _bool(ctx.files.calibration_images))
    args.add_all(_postprocessing_flags(ctx.attr))
    inputs = [config]
    if ctx.file.labels:
        args.add("--labels", ctx.file.labels)
        inputs.append(ctx.file.labels)
    args.add("--converter_flags_out", converter_flags)
    args.add("--metadata_out", metadata)
    args.add("--labels_out", labels)
    run_tool(
        ctx,
        ctx.attr._contract,
        args,
        inputs,
        outputs = [converter_flags, metadata, labels],
        mnemonic = "SsdModelContract",
        progress_message = "Reading the model contract of %s" % ctx.label,
    )

def _export_action(ctx, checkpoint, config, graph):
    export_dir = ctx.actions.declare_directory(ctx.label.name + "_export")
    exporter = tool_invocation(ctx, ctx.attr.exporter)
    args = ctx.actions.args()
    args.add("--pipeline_config_path", config)
    args.add("--trained_checkpoint_prefix", checkpoint_prefix(checkpoint))
    args.add("--output_directory", export_dir.path)
    args.add("--add_postprocessing_op=true")
    args.add_all(_postprocessing_flags(ctx.attr))
    if ctx.attr.config_override:
        args.add("--config_override=" + ctx.attr.config_override)
    if ctx.attr.embed_input_normalization:
        args.add("--embed_input_normalization")
    if ctx.files.calibration_images:
        args.add_joined("--calibration_images", ctx.files.calibration_images, join_with = ",")
    args.add_all(ctx.attr.exporter_args)
    run_quietly(
        ctx,
        command = 'export_dir="$1" graph="$2"; shift 2; quietly "$@" && cp "$export_dir/tflite_graph.pb" "$graph"',
        arguments = [export_dir.path, graph.path] + exporter.argv + [args],
        inputs = depset([checkpoint.index, config] + ctx.files.calibration_images,
                        transitive = [checkpoint.data, exporter.inputs]),
        tools = exporter.tools,
        outputs = [export_dir, graph],
        mnemonic = "SsdExportGraph",
        progress_message = "Exporting the TFLite graph of %s%s" % (ctx.label, " (synthetic checkpoint)" if checkpoint.synthetic else ""),
    )

def _convert_action(ctx, graph, converter_flags, tflite):
    converter = tool_invocation(ctx, ctx.attr.converter)
    args = ctx.actions.args()
    args.add("--input_file=" + graph.path)
    args.add("--output_file=" + tflite.path)
    if ctx.attr.ignore_weights_narrow_range:
        args.add("--ignore_weights_narrow_range")
    args.add_all(ctx.attr.converter_args)
    run_quietly(
        ctx,
        # The flags file holds one flag per line, none with spaces; the converter's words end at "--".
        command = 'flags_file="$1"; shift; converter=(); while [ "$1" != -- ]; do converter+=("$1"); shift; done; ' +
                  'shift; quietly "${converter[@]}" $(cat "$flags_file") "$@"',
        arguments = [converter_flags.path] + converter.argv + ["--", args],
        inputs = depset([graph, converter_flags], transitive = [converter.inputs]),
        tools = converter.tools,
        outputs = [tflite],
        mnemonic = "TocoConvert",
        progress_message = "Converting %s to TFLite" % ctx.label,
    )

def _metadata_action(ctx, converted, labels, metadata, tflite, synthetic):
    args = ctx.actions.args()
    args.add("--input_file", converted)
    args.add("--output_file", tflite)
    args.add("--labels", labels)
    args.add("--model_metadata", metadata)
    args.add("--name", ctx.label.name)
    description = "SSD detector converted by rules_ssd_tflite from {}.".format(ctx.attr.checkpoint.label)
    if synthetic:
        description += " Synthetic checkpoint: random weights, its detections mean nothing."
    args.add("--description", description)
    args.add("--version", ctx.attr.model_version)
    run_tool(
        ctx,
        ctx.attr._metadata_populator,
        args,
        [converted, labels, metadata],
        outputs = [tflite],
        mnemonic = "SsdTfliteMetadata",
        progress_message = "Embedding TFLite metadata in %s" % ctx.label,
    )

def _is_number(text):
    """Whether `text` reads as a decimal number (Starlark here has no float parsing)."""
    digits = text.lstrip("+-")
    return digits != "" and digits.count(".") <= 1 and digits.replace(".", "").isdigit()

def _validate_attributes(ctx):
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
    if ctx.files.calibration_images:
        if ctx.attr.inference_type == "FLOAT":
            fail("calibration_images measure ranges for a QUANTIZED_UINT8 build; with inference_type FLOAT " +
                 "they would be unused. Drop one of them.", attr = "calibration_images")
        if ctx.attr.default_ranges:
            fail("calibration_images and default_ranges are two ways to give ranges to a float checkpoint: " +
                 "use one.", attr = "calibration_images")
    if ctx.attr.ignore_weights_narrow_range and ctx.attr.inference_type == "FLOAT":
        fail("ignore_weights_narrow_range changes how weights are quantized: it needs a QUANTIZED_UINT8 build",
             attr = "ignore_weights_narrow_range")

def _ssd_tflite_model_impl(ctx):
    _validate_attributes(ctx)
    checkpoint = ctx.attr.checkpoint[SsdCheckpointInfo]
    if checkpoint.synthetic and not ctx.attr._allow_synthetic_checkpoints[SyntheticCheckpointsInfo].allowed:
        fail(("{} is built from {}, a synthetic checkpoint (random weights), which " +
              "--//tools:allow_synthetic_checkpoints=false (--config=release) refuses. Build it from real " +
              "weights (--config=zoo for //models) or leave out --config=release.").format(
            ctx.label,
            ctx.attr.checkpoint.label,
        ), attr = "checkpoint")
    config = ctx.file.pipeline_config or checkpoint.pipeline_config
    tflite = ctx.actions.declare_file(ctx.label.name + ".tflite")
    graph = ctx.actions.declare_file(ctx.label.name + "_graph.pb")
    labels = ctx.actions.declare_file(ctx.label.name + "_labels.txt")
    metadata = ctx.actions.declare_file(ctx.label.name + "_metadata.json")
    converter_flags = ctx.actions.declare_file(ctx.label.name + "_converter.flags")
    _contract_action(ctx, config, converter_flags, metadata, labels, checkpoint.synthetic)
    _export_action(ctx, checkpoint, config, graph)
    if ctx.attr.embed_metadata:
        converted = ctx.actions.declare_file(ctx.label.name + "_converted.tflite")
        _convert_action(ctx, graph, converter_flags, converted)
        _metadata_action(ctx, converted, labels, metadata, tflite, checkpoint.synthetic)
    else:
        _convert_action(ctx, graph, converter_flags, tflite)
    return [
        DefaultInfo(
            files = depset([tflite, graph, labels, metadata]),
            runfiles = ctx.runfiles(files = [tflite, graph, labels, metadata]),
        ),
        OutputGroupInfo(tflite = depset([tflite]), graph = depset([graph])),
        SsdTfliteModelInfo(
            tflite = tflite,
            graph = graph,
            labels = labels,
            metadata = metadata,
            input_array = INPUT_ARRAY,
            output_arrays = OUTPUT_ARRAYS,
            inference_type = ctx.attr.inference_type or ("QUANTIZED_UINT8" if ctx.files.calibration_images else ""),
            synthetic = checkpoint.synthetic,
        ),
    ]

ssd_tflite_model = rule(
    implementation = _ssd_tflite_model_impl,
    doc = """Converts an SSD detection checkpoint into a `detect.tflite`-style model.

Runs the export tool (`export_tflite_ssd_graph` with the post-processing op)
and then the converter with TOCO's flags. Outputs `<name>.tflite`,
`<name>_graph.pb`, `<name>_labels.txt` and `<name>_metadata.json`, and
provides SsdTfliteModelInfo.""",
    attrs = {
        "checkpoint": attr.label(
            mandatory = True,
            providers = [SsdCheckpointInfo],
            doc = "The checkpoint: an `ssd_checkpoint` (e.g. `@<zoo tarball>//:checkpoint`) or `synthetic_ssd_checkpoint`.",
        ),
        "pipeline_config": attr.label(
            allow_single_file = True,
            doc = "A pipeline.config to use instead of the checkpoint's own.",
        ),
        "config_override": attr.string(doc = "Text proto merged on top of the config (the export's --config_override)."),
        "input_shape": attr.int_list(doc = "Converter --input_shapes; default [1, height, width, 3] from the config's fixed_shape_resizer."),
        "inference_type": attr.string(
            values = ["", "FLOAT", "QUANTIZED_UINT8"],
            doc = "Converter --inference_type; default QUANTIZED_UINT8 for configs with graph_rewriter.quantization " +
                  "or with calibration_images, else FLOAT.",
        ),
        "mean_value": attr.string(default = "128", doc = "Converter --mean_values of the uint8 input."),
        "std_value": attr.string(default = "128", doc = "Converter --std_values of the uint8 input."),
        "default_ranges": attr.string_list(doc = "[min, max]: converter --default_ranges_min/max for tensors without FakeQuant ranges."),
        "change_concat_input_ranges": attr.bool(default = False, doc = "Converter --change_concat_input_ranges."),
        "allow_custom_ops": attr.bool(default = True, doc = "Converter --allow_custom_ops (needed for TFLite_Detection_PostProcess)."),
        "max_detections": attr.int(default = 10, doc = "Export --max_detections."),
        "max_classes_per_detection": attr.int(default = 1, doc = "Export --max_classes_per_detection."),
        "detections_per_class": attr.int(default = 100, doc = "Export --detections_per_class."),
        "use_regular_nms": attr.bool(default = False, doc = "Export --use_regular_nms."),
        "embed_input_normalization": attr.bool(
            default = False,
            doc = "Export with --embed_input_normalization (our exporter only): the model takes (pixel - 128) / 128 " +
                  "whatever the feature extractor, as a uint8 ResNet50 FPN model needs.",
        ),
        "calibration_images": attr.label_list(
            allow_files = [".jpg", ".jpeg", ".png", ".bmp"],
            doc = "Images to measure a float checkpoint's activation ranges on (our exporter only): the export " +
                  "puts FakeQuant nodes with those ranges where quantization-aware training would, and the " +
                  "build becomes QUANTIZED_UINT8 without default ranges. Use a few hundred images like the " +
                  "ones the model will see.",
        ),
        "labels": attr.label(allow_single_file = True, doc = "Class names, one per line in class-id order; default class_1..class_N."),
        "exporter": attr.label(
            default = "//py:export_tool",
            cfg = "exec",
            doc = "Export tool taking export_tflite_ssd_graph's flags: ours (run with this rule set's own " +
                  "Python toolchain) or any executable, e.g. a py_binary of tensorflow/models' exporter.",
        ),
        "exporter_args": attr.string_list(
            default = ["--write_pbtxt=false"],
            doc = "Extra exporter flags; the default skips the large text graph. Use [] with tensorflow/models' exporter.",
        ),
        "converter": attr.label(
            default = "//py:converter_tool",
            cfg = "exec",
            doc = "Converter taking TOCO's flags, e.g. a TensorFlow source tree's //tensorflow/lite/toco:toco.",
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
        "_allow_synthetic_checkpoints": attr.label(default = "//tools:allow_synthetic_checkpoints"),
        "_contract": attr.label(default = "//py:contract_tool", cfg = "exec"),
        "_metadata_populator": attr.label(default = "//py:metadata_tool", cfg = "exec"),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
    provides = [SsdTfliteModelInfo],
)
