"""Rules that provide SsdCheckpointInfo: from checkpoint files, or synthesized."""

load("//tools:python_toolchain.bzl", "PYTHON_TOOLCHAIN_TYPE")
load(":actions.bzl", "run_tool")
load(":constants.bzl", "CHECKPOINT_CONFIG_FILE", "CHECKPOINT_DATA_SHARD", "CHECKPOINT_PREFIX", "CHECKPOINT_STATE_FILE")
load(":providers.bzl", "SsdCheckpointInfo")

def _ssd_checkpoint_impl(ctx):
    if not ctx.file.index.basename.endswith(".index"):
        fail("index must be the checkpoint's `<prefix>.index` file, got " + ctx.file.index.basename, attr = "index")
    prefix = ctx.file.index.basename[:-len(".index")]
    for data in ctx.files.data:
        if not data.basename.startswith(prefix + ".data-") or data.dirname != ctx.file.index.dirname:
            fail("{} is not a data shard of checkpoint {}".format(data.short_path, prefix), attr = "data")
    if not ctx.files.data:
        fail("checkpoint {} has no `{}.data-*` shards".format(ctx.file.index.short_path, prefix), attr = "data")
    data = depset(ctx.files.data)
    return [
        SsdCheckpointInfo(index = ctx.file.index, data = data, pipeline_config = ctx.file.pipeline_config, synthetic = False),
        DefaultInfo(
            files = depset([ctx.file.index, ctx.file.pipeline_config], transitive = [data]),
            runfiles = ctx.runfiles(files = [ctx.file.index, ctx.file.pipeline_config], transitive_files = data),
        ),
    ]

ssd_checkpoint = rule(
    implementation = _ssd_checkpoint_impl,
    doc = "A detection checkpoint from files, such as the contents of a model-zoo tarball.",
    attrs = {
        "index": attr.label(mandatory = True, allow_single_file = True, doc = "The `model.ckpt.index` file."),
        "data": attr.label_list(mandatory = True, allow_files = True, doc = "The `model.ckpt.data-*` shards."),
        "pipeline_config": attr.label(mandatory = True, allow_single_file = True, doc = "The model's pipeline.config."),
    },
    provides = [SsdCheckpointInfo],
)

def _synthetic_ssd_checkpoint_impl(ctx):
    folder = ctx.label.name + "/"
    index = ctx.actions.declare_file(folder + CHECKPOINT_PREFIX + ".index")
    data = ctx.actions.declare_file(folder + CHECKPOINT_DATA_SHARD)
    state = ctx.actions.declare_file(folder + CHECKPOINT_STATE_FILE)
    config = ctx.actions.declare_file(folder + CHECKPOINT_CONFIG_FILE)
    args = ctx.actions.args()
    args.add("--pipeline_config_path", ctx.file.pipeline_config)
    args.add("--output_directory", index.dirname)
    args.add("--seed", ctx.attr.seed)
    run_tool(
        ctx,
        ctx.attr._generator,
        args,
        depset([ctx.file.pipeline_config]),
        outputs = [index, data, state, config],
        mnemonic = "SsdSyntheticCheckpoint",
        progress_message = "Synthesizing checkpoint %s" % ctx.label,
    )
    return [
        SsdCheckpointInfo(index = index, data = depset([data]), pipeline_config = config, synthetic = True),
        DefaultInfo(
            files = depset([index, data, state, config]),
            runfiles = ctx.runfiles(files = [index, data, state, config]),
        ),
    ]

synthetic_ssd_checkpoint = rule(
    implementation = _synthetic_ssd_checkpoint_impl,
    doc = """A checkpoint with the exact variable layout of `pipeline_config`'s model and seeded random values.

Stands in for a model-zoo checkpoint where it cannot be downloaded; the same
config and seed always give the same bytes.""",
    attrs = {
        "pipeline_config": attr.label(mandatory = True, allow_single_file = True, doc = "Config of the model to synthesize."),
        "seed": attr.int(default = 1, doc = "Seed of the random values."),
        "_generator": attr.label(default = "//py:synthesis_tool", cfg = "exec"),
    },
    toolchains = [PYTHON_TOOLCHAIN_TYPE],
    provides = [SsdCheckpointInfo],
)
