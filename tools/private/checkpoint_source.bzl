"""The `checkpoints` build setting: model-zoo tarballs or synthesized checkpoints."""

CHECKPOINT_SOURCES = ["synthetic", "zoo"]

def _checkpoint_source_impl(ctx):
    if ctx.build_setting_value not in CHECKPOINT_SOURCES:
        fail("{} must be one of {}, got '{}'".format(ctx.label, ", ".join(CHECKPOINT_SOURCES), ctx.build_setting_value))
    return []

checkpoint_source = rule(
    implementation = _checkpoint_source_impl,
    build_setting = config.string(flag = True),
    doc = "Where model targets take their checkpoints from: `synthetic` (offline) or `zoo` (downloaded tarballs).",
)
