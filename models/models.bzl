"""The //models package's macros: checkpoints from the model zoo or synthesized, and the list of its models."""

load("//tools:defs.bzl", "SsdCheckpointInfo", "SsdTfliteGraphInfo", "SsdTfliteModelInfo", "synthetic_ssd_checkpoint")

def zoo_checkpoint(name, pipeline_config):
    """`<name>_checkpoint`: the model-zoo tarball `@<name>`, or `<name>_synthetic`, as `//tools:checkpoint_source` says.

    Args:
      name: the tarball's repository (see tools/private/zoo.bzl).
      pipeline_config: the model's config, from which the synthetic checkpoint is made.
    """
    synthetic_ssd_checkpoint(
        name = name + "_synthetic",
        pipeline_config = pipeline_config,
    )
    native.alias(
        name = name + "_checkpoint",
        actual = select({
            "//tools:zoo_checkpoints": "@{}//:checkpoint".format(name),
            "//conditions:default": name + "_synthetic",
        }),
    )

def _model_manifest_impl(ctx):
    repository_of = {}
    checkpoints = {}
    runfiles = []
    for repository, checkpoint in zip(ctx.attr.zoo_repositories, ctx.attr.synthetic_checkpoints):
        # A graph's checkpoint is the synthetic stand-in by default, the tarball's @<repository> with --config=zoo.
        repository_of[checkpoint.label] = repository
        repository_of[Label("@{}//:checkpoint".format(repository))] = repository
        checkpoints[repository] = checkpoint[SsdCheckpointInfo].index.short_path[:-len(".index")]
        runfiles.append(checkpoint[DefaultInfo].default_runfiles)
    graph_of = {}
    for graph, model_names in ctx.attr.graphs.items():
        for model_name in model_names.split(","):
            graph_of[model_name] = graph
    models = []
    files = []
    for model in ctx.attr.models:
        graph = graph_of[model.label.name]
        info = model[SsdTfliteModelInfo]
        graph_info = graph[SsdTfliteGraphInfo]
        models.append(struct(
            name = model.label.name,
            tflite = info.tflite.short_path,
            labels = info.labels.short_path,
            contract = info.contract.short_path,
            graph = info.graph.short_path,
            graph_target = graph.label.name,
            pipeline_config = graph_info.pipeline_config.short_path,
            inference_type = info.inference_type,
            calibrated = graph_info.calibrated,
            default_ranges = ctx.attr.default_ranges[model.label.name],
            synthetic = info.synthetic,
            zoo_repository = repository_of.get(graph_info.checkpoint, ""),
        ))
        files += [info.tflite, info.labels, info.contract, info.graph, graph_info.pipeline_config]
    manifest = ctx.actions.declare_file(ctx.label.name + ".json")
    ctx.actions.write(manifest, json.encode_indent(struct(models = models, synthetic_zoo_checkpoints = checkpoints)) + "\n")
    merged = ctx.runfiles(files = [manifest] + files)
    for checkpoint_runfiles in runfiles:
        merged = merged.merge(checkpoint_runfiles)
    return [DefaultInfo(files = depset([manifest]), runfiles = merged)]

_model_manifest = rule(
    implementation = _model_manifest_impl,
    attrs = {
        "models": attr.label_list(providers = [SsdTfliteModelInfo]),
        "graphs": attr.label_keyed_string_dict(providers = [SsdTfliteGraphInfo], doc = "graph -> its models, comma-separated."),
        "default_ranges": attr.string_list_dict(),
        "zoo_repositories": attr.string_list(),
        "synthetic_checkpoints": attr.label_list(providers = [SsdCheckpointInfo]),
    },
)

def model_manifest(name):
    """`<name>.json`: every ssd_tflite_model of the package so far, for the tests and dev/bench.

    Its runfiles hold each model's files, graph and config, and the synthetic
    checkpoint standing in for each model-zoo tarball, so that a test that
    depends on it covers every model without naming one.

    Args:
      name: the target; call it last in the BUILD file.
    """
    rules = native.existing_rules()
    models = [rules[name] for name in sorted(rules.keys()) if rules[name]["kind"] == "ssd_tflite_model"]

    # The zoo_checkpoint calls above: each made `<repository>_synthetic` and `<repository>_checkpoint`.
    zoo_repositories = [
        name[:-len("_synthetic")]
        for name in sorted(rules.keys())
        if rules[name]["kind"] == "synthetic_ssd_checkpoint" and name.endswith("_synthetic") and
           name[:-len("_synthetic")] + "_checkpoint" in rules
    ]

    # graph -> the models converted from it (existing_rules() gives a label as a string or a Label).
    graphs = {}
    for model in models:
        graph = str(model["graph"])
        graphs[graph] = ",".join([graphs[graph], model["name"]]) if graph in graphs else model["name"]
    _model_manifest(
        name = name,
        models = [":" + model["name"] for model in models],
        graphs = graphs,
        default_ranges = {model["name"]: model["default_ranges"] for model in models},
        zoo_repositories = zoo_repositories,
        synthetic_checkpoints = [":%s_synthetic" % repository for repository in zoo_repositories],
    )
