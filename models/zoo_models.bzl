"""Checkpoints that come from a model-zoo tarball or, offline, are synthesized."""

load("//tools:defs.bzl", "synthetic_ssd_checkpoint")

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
