"""The `allow_synthetic_checkpoints` build setting: `--config=release` turns it off."""

SyntheticCheckpointsInfo = provider(
    doc = "Whether models may be built from synthesized (random-weight) checkpoints.",
    fields = {"allowed": "bool"},
)

def _allow_synthetic_checkpoints_impl(ctx):
    return [SyntheticCheckpointsInfo(allowed = ctx.build_setting_value)]

allow_synthetic_checkpoints = rule(
    implementation = _allow_synthetic_checkpoints_impl,
    build_setting = config.bool(flag = True),
    doc = "False makes every ssd_tflite_model built from a synthetic checkpoint fail analysis (releases).",
)
