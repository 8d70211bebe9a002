"""Model targets that build from a model-zoo tarball or, offline, from a synthetic checkpoint."""

load("//tools:defs.bzl", "ssd_tflite_model", "synthetic_ssd_checkpoint")

def zoo_tflite_model(name, repository, pipeline_config, **kwargs):
    """An ssd_tflite_model whose checkpoint follows `//models:checkpoints`.

    Args:
      name: target name; `<name>.tflite` is the model.
      repository: the http_archive of the model-zoo tarball (see tools/repositories.bzl).
      pipeline_config: the model's config, from which the synthetic checkpoint
        `<repository>_synthetic` is made.
      **kwargs: further ssd_tflite_model attributes (converter settings).
    """
    synthetic = repository + "_synthetic"  # shared by the targets of one tarball
    if not native.existing_rule(synthetic):
        synthetic_ssd_checkpoint(
            name = synthetic,
            pipeline_config = pipeline_config,
        )
    ssd_tflite_model(
        name = name,
        checkpoint = select({
            "//models:zoo_checkpoints": "@{}//:checkpoint".format(repository),
            "//conditions:default": synthetic,
        }),
        labels = "//models:coco_labels.txt",
        **kwargs
    )
