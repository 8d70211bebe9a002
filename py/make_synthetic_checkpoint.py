"""Writes a synthetic checkpoint laid out exactly as a pipeline.config's model.

  make_synthetic_checkpoint --pipeline_config_path=pipeline.config --output_directory=out --seed=1

writes out/model.ckpt.{index,data-00000-of-00001}, out/checkpoint and
out/pipeline.config: the files of a model-zoo tarball that the export reads.
Same config and seed, same bytes.
"""

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import checkpoint_files, pipeline_config, synthetic

FLAGS = flags.FLAGS
flags.DEFINE_string("pipeline_config_path", None, "Config whose model the checkpoint is for.")
flags.DEFINE_string("output_directory", None, "Folder for model.ckpt.*, checkpoint and pipeline.config.")
flags.DEFINE_integer("seed", 1, "Seed of the random values.")
flags.mark_flags_as_required(["pipeline_config_path", "output_directory"])


def main() -> None:
    spec = pipeline_config.read(FLAGS.pipeline_config_path)
    values = synthetic.checkpoint_values(spec, FLAGS.seed)
    checkpoint_files.write_directory(FLAGS.output_directory, values, FLAGS.pipeline_config_path)
    logging.info("Wrote %d variables for %s to %s", len(values), spec.feature_extractor.type, FLAGS.output_directory)


if __name__ == "__main__":
    cli.run(main)
