"""A small analysis-test helper in the style of bazel-skylib's unittest.bzl."""

load("//tools:defs.bzl", "SsdTfliteGraphInfo", "SsdTfliteModelInfo")

def _result(errors):
    return [AnalysisTestResultInfo(success = not errors, message = "\n".join(errors))]

def _expect_equal(errors, what, expected, actual):
    if expected != actual:
        errors.append("{}: expected {}, got {}".format(what, repr(expected), repr(actual)))

def _actions(target):
    return {action.mnemonic: action for action in target.actions}

def _model_test_impl(ctx):
    target = ctx.attr.target_under_test
    info = target[SsdTfliteModelInfo]
    name = target.label.name
    errors = []
    _expect_equal(errors, "tflite", name + ".tflite", info.tflite.basename)
    _expect_equal(errors, "graph", "tflite_graph.pb", info.graph.basename)
    _expect_equal(errors, "labels", name + "_labels.txt", info.labels.basename)
    _expect_equal(errors, "contract", name + "_contract.json", info.contract.basename)
    _expect_equal(errors, "input_array", "normalized_input_image_tensor", info.input_array)
    _expect_equal(errors, "output_arrays", ["TFLite_Detection_PostProcess"] + ["TFLite_Detection_PostProcess:%d" % i for i in (1, 2, 3)], info.output_arrays)
    _expect_equal(errors, "inference_type", ctx.attr.inference_type, info.inference_type)
    _expect_equal(errors, "synthetic", ctx.attr.synthetic, info.synthetic)
    actions = _actions(target)
    _expect_equal(errors, "mnemonics", sorted(ctx.attr.mnemonics), sorted(actions))
    convert = actions["TocoConvert"]
    argv = convert.argv
    if ctx.attr.converter_path_contains not in " ".join(argv):
        errors.append("converter command line lacks {}: {}".format(ctx.attr.converter_path_contains, argv))

    # Every flag is known at analysis (argv includes what goes to a params file).
    for flag in ctx.attr.converter_flags:
        if flag not in argv:
            errors.append("converter command line lacks {}: {}".format(flag, argv))
    if info.graph not in convert.inputs.to_list():
        errors.append("TocoConvert does not read the graph " + info.graph.short_path)

    # The contract gets the converter's settings, resolved at analysis, as the same flags.
    contract_argv = actions["SsdModelContract"].argv
    for flag in ctx.attr.contract_flags:
        if flag not in contract_argv:
            errors.append("contract command line lacks {}: {}".format(flag, contract_argv))
    settings = [flag for flag in argv if flag.startswith(("--inference_type=", "--input_shapes=", "--mean_values="))]
    for flag in settings:
        if flag not in contract_argv:
            errors.append("the contract does not get the converter's {}: {}".format(flag, contract_argv))

    # The converter's output goes through the action that checks it against the contract, and embeds
    # metadata (the default) or not.
    final = actions.get("SsdTfliteMetadata") or actions.get("SsdModelCheck")
    if not final:
        errors.append("no action checks the converted model against its contract")
    else:
        if info.tflite not in final.outputs.to_list():
            errors.append("{} does not write {}".format(final.mnemonic, info.tflite.short_path))
        if convert.outputs.to_list()[0] not in final.inputs.to_list():
            errors.append(final.mnemonic + " does not read the converter's output")
        if info.contract not in final.inputs.to_list():
            errors.append("{} does not read the contract {}".format(final.mnemonic, info.contract.short_path))
        embed = "--embed_metadata=" + ("true" if final.mnemonic == "SsdTfliteMetadata" else "false")
        if embed not in final.argv:
            errors.append("{} lacks {}: {}".format(final.mnemonic, embed, final.argv))
    return _result(errors)

model_test = rule(
    implementation = _model_test_impl,
    analysis_test = True,
    doc = "Checks the SsdTfliteModelInfo, actions and converter flags of an ssd_tflite_model target.",
    attrs = {
        "target_under_test": attr.label(mandatory = True, providers = [SsdTfliteModelInfo]),
        "inference_type": attr.string(),
        "synthetic": attr.bool(),
        "mnemonics": attr.string_list(default = ["SsdModelContract", "TocoConvert", "SsdTfliteMetadata"]),
        "converter_path_contains": attr.string(default = "py/toco"),
        "converter_flags": attr.string_list(doc = "Flags the converter must get, as analysis built them."),
        "contract_flags": attr.string_list(doc = "Flags the contract action must get, as analysis built them."),
    },
)

def _graph_test_impl(ctx):
    target = ctx.attr.target_under_test
    info = target[SsdTfliteGraphInfo]
    errors = []
    actions = _actions(target)
    _expect_equal(errors, "mnemonics", ["SsdExportGraph"], sorted(actions))
    export = actions["SsdExportGraph"]
    _expect_equal(errors, "outputs", [info.graph], export.outputs.to_list())
    _expect_equal(errors, "graph", "{}/tflite_graph.pb".format(target.label.name), info.graph.short_path.split("/", 1)[1])
    if info.graph.is_directory:
        errors.append("the graph is a tree artifact")
    _expect_equal(errors, "calibrated", True, info.calibrated)
    _expect_equal(errors, "postprocessing_flags", [
        "--max_detections=10",
        "--max_classes_per_detection=1",
        "--detections_per_class=100",
        "--use_regular_nms=false",
    ], info.postprocessing_flags)
    return _result(errors)

graph_test = rule(
    implementation = _graph_test_impl,
    analysis_test = True,
    doc = "Checks that a calibrated ssd_tflite_graph exports one declared file with the default post-processing.",
    attrs = {"target_under_test": attr.label(mandatory = True, providers = [SsdTfliteGraphInfo])},
)

def _shared_graph_test_impl(ctx):
    graph = ctx.attr.target_under_test[SsdTfliteGraphInfo].graph
    errors = []
    for model in ctx.attr.models:
        _expect_equal(errors, str(model.label) + " graph", graph, model[SsdTfliteModelInfo].graph)
        if "SsdExportGraph" in _actions(model):
            errors.append("{} exports on its own".format(model.label))
    return _result(errors)

shared_graph_test = rule(
    implementation = _shared_graph_test_impl,
    analysis_test = True,
    doc = "Checks that `models` convert the graph of `target_under_test` without an export of their own.",
    attrs = {
        "target_under_test": attr.label(mandatory = True, providers = [SsdTfliteGraphInfo]),
        "models": attr.label_list(mandatory = True, providers = [SsdTfliteModelInfo]),
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
