"""A small analysis-test helper in the style of bazel-skylib's unittest.bzl."""

load("//tools:defs.bzl", "SsdTfliteModelInfo")

def _result(errors):
    return [AnalysisTestResultInfo(success = not errors, message = "\n".join(errors))]

def _expect_equal(errors, what, expected, actual):
    if expected != actual:
        errors.append("{}: expected {}, got {}".format(what, repr(expected), repr(actual)))

def _model_test_impl(ctx):
    target = ctx.attr.target_under_test
    info = target[SsdTfliteModelInfo]
    name = target.label.name
    errors = []
    _expect_equal(errors, "tflite", name + ".tflite", info.tflite.basename)
    _expect_equal(errors, "graph", name + "_graph.pb", info.graph.basename)
    _expect_equal(errors, "labels", name + "_labels.txt", info.labels.basename)
    _expect_equal(errors, "metadata", name + "_metadata.json", info.metadata.basename)
    _expect_equal(errors, "input_array", "normalized_input_image_tensor", info.input_array)
    _expect_equal(errors, "output_arrays", ["TFLite_Detection_PostProcess"] + ["TFLite_Detection_PostProcess:%d" % i for i in (1, 2, 3)], info.output_arrays)
    _expect_equal(errors, "inference_type", ctx.attr.inference_type, info.inference_type)
    _expect_equal(errors, "synthetic", ctx.attr.synthetic, info.synthetic)
    actions = {action.mnemonic: action for action in target.actions}
    _expect_equal(errors, "mnemonics", sorted(ctx.attr.mnemonics), sorted([m for m in actions if m in ctx.attr.mnemonics]))
    convert = actions.get("TocoConvert")
    if convert:
        argv = " ".join(convert.argv)
        if ctx.attr.converter_path_contains not in argv:
            errors.append("converter command line lacks {}: {}".format(ctx.attr.converter_path_contains, argv))
    # With embedded metadata (the default) the converter's output goes through the metadata action.
    final = actions.get("SsdTfliteMetadata") or convert
    if final and info.tflite not in final.outputs.to_list():
        errors.append("{} does not write {}".format(final.mnemonic, info.tflite.short_path))
    if convert and "SsdTfliteMetadata" in actions and convert.outputs.to_list()[0] not in actions["SsdTfliteMetadata"].inputs.to_list():
        errors.append("SsdTfliteMetadata does not read the converter's output")
    return _result(errors)

model_test = rule(
    implementation = _model_test_impl,
    analysis_test = True,
    doc = "Checks the SsdTfliteModelInfo and actions of an ssd_tflite_model target.",
    attrs = {
        "target_under_test": attr.label(mandatory = True, providers = [SsdTfliteModelInfo]),
        "inference_type": attr.string(),
        "synthetic": attr.bool(),
        "mnemonics": attr.string_list(default = ["SsdModelContract", "SsdExportGraph", "TocoConvert", "SsdTfliteMetadata"]),
        "converter_path_contains": attr.string(default = "py/toco"),
    },
)

def _expect_failure_impl(ctx):
    target = ctx.attr.target_under_test[0]
    errors = []
    if AnalysisFailureInfo not in target:
        errors.append("expected an analysis failure of " + str(target.label))
    else:
        messages = "\n".join([cause.message for cause in target[AnalysisFailureInfo].causes.to_list()])
        if ctx.attr.message not in messages:
            errors.append("expected '{}' in: {}".format(ctx.attr.message, messages))
    return _result(errors)

def _expect_failure_rule(settings, doc):
    """An analysis test rule that expects its target to fail analysis with `message` under `settings`."""
    return rule(
        implementation = _expect_failure_impl,
        analysis_test = True,
        doc = doc,
        attrs = {
            "target_under_test": attr.label(
                mandatory = True,
                cfg = analysis_test_transition(settings = dict(
                    settings,
                    **{"//command_line_option:allow_analysis_failures": True}
                )),
            ),
            "message": attr.string(mandatory = True),
        },
    )

expect_failure_test = _expect_failure_rule({}, "Passes when `target_under_test` fails analysis with `message`.")

expect_release_failure_test = _expect_failure_rule(
    {"//tools:allow_synthetic_checkpoints": False},
    "Passes when `target_under_test` fails analysis with `message` under --config=release.",
)
