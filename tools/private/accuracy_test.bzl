"""The ssd_tflite_accuracy_test rule: COCO mAP of a model on annotated images, as a test (evaluate)."""

load("//tools:python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE", "SsdPythonToolInfo", "python_tool_command")

def _number(ctx, name, low, high):
    """The attribute `name` as a float in [low, high], or None if unset; fails analysis otherwise."""
    value = getattr(ctx.attr, name)
    if not value:
        return None
    if not value.replace(".", "", 1).isdigit():
        fail("{} must be a number in [{}, {}], got '{}'".format(name, low, high, value), attr = name)
    number = float(value)
    if number < low or number > high:
        fail("{} must be a number in [{}, {}], got {}".format(name, low, high, value), attr = name)
    return value

def _model_file(target, attr_name):
    tflite = [file for file in target.files.to_list() if file.extension == "tflite"]
    if len(tflite) != 1:
        fail("{} must give exactly one .tflite file, {} gives {}".format(attr_name, target.label, len(tflite)), attr = attr_name)
    return tflite[0]

def _shell_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"

def _ssd_tflite_accuracy_test_impl(ctx):
    min_ap = _number(ctx, "min_ap", 0, 1)
    max_ap_drop = _number(ctx, "max_ap_drop", 0, 1)
    if not min_ap and not ctx.attr.reference:
        fail("give min_ap, or a reference with max_ap_drop: the bound the model's AP is held to", attr = "min_ap")
    if bool(ctx.attr.reference) != bool(max_ap_drop):
        fail("reference and max_ap_drop go together", attr = "max_ap_drop")
    folders = {image.dirname: None for image in ctx.files.images}
    if len(folders) != 1:
        fail("images must all be in one folder (the annotations name them by file name), got {}".format(", ".join(folders)), attr = "images")

    model = _model_file(ctx.attr.model, "model")
    arguments = [
        "--model=" + model.short_path,
        "--annotations=" + ctx.file.annotations.short_path,
        "--images=" + ctx.files.images[0].short_path.rsplit("/", 1)[0],
    ]
    runfiles_files = ctx.files.model + ctx.files.images + [ctx.file.annotations]
    if ctx.attr.max_images:
        arguments.append("--max_images=%d" % ctx.attr.max_images)
    if ctx.file.labels:
        arguments.append("--labels=" + ctx.file.labels.short_path)
        runfiles_files.append(ctx.file.labels)
    if min_ap:
        arguments.append("--min_ap=" + min_ap)
    if ctx.attr.reference:
        arguments.append("--reference=" + _model_file(ctx.attr.reference, "reference").short_path)
        arguments.append("--max_ap_drop=" + max_ap_drop)
        runfiles_files += ctx.files.reference

    command = python_tool_command(ctx, ctx.attr._evaluator[SsdPythonToolInfo])
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "#!/bin/sh\n# COCO mAP of {}: evaluate, held to the bound given.\nexec {} {}\n".format(
        ctx.attr.model.label,
        _shell_quote(command.executable.short_path),
        " ".join([_shell_quote(argument) for argument in [ctx.attr._evaluator[SsdPythonToolInfo].main.short_path] + arguments]),
    ), is_executable = True)
    runfiles = ctx.runfiles(files = runfiles_files, transitive_files = command.inputs)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

ssd_tflite_accuracy_test = rule(
    implementation = _ssd_tflite_accuracy_test_impl,
    test = True,
    doc = """COCO mAP of a detect.tflite on COCO-format annotations, as a test that fails with the figures.

    Runs `evaluate` (pycocotools' COCOeval, the model in LiteRT, classes matched
    to categories by label name) and holds the model's AP to `min_ap`, or to a
    `reference` model's AP minus `max_ap_drop`. The figures (AP, AP50, AP75,
    AR) are in the test log either way.
    """,
    attrs = {
        "model": attr.label(
            mandatory = True,
            allow_files = [".tflite"],
            doc = "The model: an ssd_tflite_model target (its labels come with it) or a .tflite file.",
        ),
        "annotations": attr.label(mandatory = True, allow_single_file = [".json"], doc = "COCO instances annotations (images, categories, annotations)."),
        "images": attr.label_list(mandatory = True, allow_files = True, doc = "The annotated images, all in one folder."),
        "labels": attr.label(
            allow_single_file = True,
            doc = "Class names for a model that carries none (no embedded metadata, no `<name>_labels.txt` beside it): one per line, or a label_map.pbtxt.",
        ),
        "min_ap": attr.string(doc = "The least AP (IoU 0.50:0.95) the model must reach, a number in [0, 1]."),
        "reference": attr.label(allow_files = [".tflite"], doc = "A model to compare with, e.g. the float build a uint8 build comes from."),
        "max_ap_drop": attr.string(doc = "With `reference`: the most AP the model may lose against it, a number in [0, 1]."),
        "max_images": attr.int(doc = "Evaluate the first N images by id only (0: all)."),
        # Runs when the test runs: in the test's configuration, not the build's exec one.
        "_evaluator": attr.label(default = "//py:evaluation_tool", providers = [SsdPythonToolInfo]),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
)
