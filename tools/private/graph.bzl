"""The ssd_tflite_graph rule: checkpoint -> frozen TFLite-ready graph (export_tflite_ssd_graph)."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load("//tools:python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE")
load(":actions.bzl", "check_param_file_lines", "run_tool")
load(":constants.bzl", "GRAPH_BASENAME", "POSTPROCESSING_DEFAULTS")
load(":providers.bzl", "SsdCheckpointInfo", "SsdTfliteGraphInfo", "checkpoint_prefix")

def _postprocessing_flags(attr):
    return [
        "--max_detections=%d" % attr.max_detections,
        "--max_classes_per_detection=%d" % attr.max_classes_per_detection,
        "--detections_per_class=%d" % attr.detections_per_class,
        "--use_regular_nms=" + ("true" if attr.use_regular_nms else "false"),
    ]

def _ssd_tflite_graph_impl(ctx):
    checkpoint = ctx.attr.checkpoint[SsdCheckpointInfo]
    if checkpoint.synthetic and not ctx.attr._allow_synthetic_checkpoints[BuildSettingInfo].value:
        fail(("{} is exported from {}, a synthetic checkpoint (random weights), which " +
              "--//tools:allow_synthetic_checkpoints=false (--config=release) refuses. Export real " +
              "weights (--config=zoo for //models) or leave out --config=release.").format(
            ctx.label,
            ctx.attr.checkpoint.label,
        ), attr = "checkpoint")
    for name in ("max_detections", "max_classes_per_detection", "detections_per_class"):
        if getattr(ctx.attr, name) < 1:
            fail("{} must be at least 1, got {}".format(name, getattr(ctx.attr, name)), attr = name)
    config = ctx.file.pipeline_config or checkpoint.pipeline_config

    # A file in a folder of its own: the exporter's --output_directory holds nothing else we keep.
    graph = ctx.actions.declare_file("{}/{}".format(ctx.label.name, GRAPH_BASENAME))
    postprocessing_flags = _postprocessing_flags(ctx.attr)
    args = ctx.actions.args()
    args.add("--pipeline_config_path", config)
    args.add("--trained_checkpoint_prefix", checkpoint_prefix(checkpoint))
    args.add("--output_directory", graph.dirname)
    args.add("--add_postprocessing_op=true")
    args.add_all(postprocessing_flags)
    check_param_file_lines(ctx.attr.exporter, "config_override", [ctx.attr.config_override])
    check_param_file_lines(ctx.attr.exporter, "exporter_args", ctx.attr.exporter_args)
    if ctx.attr.config_override:
        args.add("--config_override=" + ctx.attr.config_override)
    if ctx.attr.embed_input_normalization:
        args.add("--embed_input_normalization")
    if ctx.files.calibration_images:
        args.add_joined("--calibration_images", ctx.files.calibration_images, join_with = ",")
    args.add_all(ctx.attr.exporter_args)
    run_tool(
        ctx,
        ctx.attr.exporter,
        args,
        inputs = depset([checkpoint.index, config] + ctx.files.calibration_images, transitive = [checkpoint.data]),
        outputs = [graph],
        mnemonic = "SsdExportGraph",
        progress_message = "Exporting the TFLite graph of %s%s" % (
            ctx.label,
            " (synthetic checkpoint)" if checkpoint.synthetic else "",
        ),
    )
    return [
        DefaultInfo(files = depset([graph]), runfiles = ctx.runfiles(files = [graph])),
        SsdTfliteGraphInfo(
            graph = graph,
            pipeline_config = config,
            config_override = ctx.attr.config_override,
            postprocessing_flags = postprocessing_flags,
            embed_input_normalization = ctx.attr.embed_input_normalization,
            calibrated = bool(ctx.files.calibration_images),
            checkpoint = ctx.attr.checkpoint.label,
            synthetic = checkpoint.synthetic,
        ),
    ]

ssd_tflite_graph = rule(
    implementation = _ssd_tflite_graph_impl,
    doc = """Exports an SSD detection checkpoint as a frozen TFLite-ready graph.

The first half of the classic recipe: `export_tflite_ssd_graph
--add_postprocessing_op=true`. Outputs `<name>/tflite_graph.pb` and provides
SsdTfliteGraphInfo, which any number of `ssd_tflite_model` targets (a float
build and its uint8 twins) convert without exporting again.""",
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
        "max_detections": attr.int(
            default = POSTPROCESSING_DEFAULTS["max_detections"],
            doc = "Export --max_detections: boxes the model returns.",
        ),
        "max_classes_per_detection": attr.int(
            default = POSTPROCESSING_DEFAULTS["max_classes_per_detection"],
            doc = "Export --max_classes_per_detection.",
        ),
        "detections_per_class": attr.int(
            default = POSTPROCESSING_DEFAULTS["detections_per_class"],
            doc = "Export --detections_per_class (regular NMS).",
        ),
        "use_regular_nms": attr.bool(
            default = POSTPROCESSING_DEFAULTS["use_regular_nms"],
            doc = "Export --use_regular_nms: per-class NMS instead of the faster class-agnostic one.",
        ),
        "embed_input_normalization": attr.bool(
            default = False,
            doc = "Export with --embed_input_normalization (our exporter only): the model takes (pixel - 128) / 128 " +
                  "whatever the feature extractor, as a uint8 ResNet50 FPN model needs.",
        ),
        "calibration_images": attr.label_list(
            allow_files = [".jpg", ".jpeg", ".png", ".bmp"],
            doc = "Images to measure a float checkpoint's activation ranges on (our exporter only): the export " +
                  "puts FakeQuant nodes with those ranges where quantization-aware training would, so a " +
                  "QUANTIZED_UINT8 model needs no default ranges. Use a few hundred images like the ones the " +
                  "model will see.",
        ),
        "exporter": attr.label(
            default = "//py:export_tool",
            cfg = "exec",
            doc = "Export tool taking export_tflite_ssd_graph's flags: ours (run with this rule set's own " +
                  "Python toolchain, as a persistent worker) or any executable, e.g. a py_binary of " +
                  "tensorflow/models' exporter.",
        ),
        "exporter_args": attr.string_list(
            default = ["--write_pbtxt=false"],
            doc = "Extra exporter flags; the default skips the large text graph. Use [] with tensorflow/models' exporter.",
        ),
        "_allow_synthetic_checkpoints": attr.label(default = "//tools:allow_synthetic_checkpoints"),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
    provides = [SsdTfliteGraphInfo],
)
