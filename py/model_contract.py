"""Checks a model's converter settings against its pipeline.config; writes its metadata and labels.

Used by the ssd_tflite_model Bazel rule beside the conversion: a setting the
config contradicts (input shape, an unstated inference type of a
quantization-aware config, one mean/std for a per-channel normalization)
fails the build, naming it.
"""

from ssd_tflite import cli
from absl import flags

from ssd_tflite import atomic_files, contract, label_map, pipeline_config

FLAGS = flags.FLAGS
flags.DEFINE_string("pipeline_config_path", None, "The model's pipeline.config.")
flags.DEFINE_string("config_override", "", "Text proto merged on top of the config.")
flags.DEFINE_string("inference_type", "", "FLOAT or QUANTIZED_UINT8; empty: QUANTIZED_UINT8 if --calibrated, else "
                    "FLOAT (refused for a quantization-aware config).")
flags.DEFINE_list("input_shape", [], "Input shape; empty: [1, height, width, 3] from the config.")
flags.DEFINE_float("mean_value", 128.0, "uint8 input value that means 0 to the graph.")
flags.DEFINE_float("std_value", 128.0, "uint8 input steps per unit of the graph input.")
flags.DEFINE_float("default_ranges_min", None, "Default range min for tensors without FakeQuant ranges.")
flags.DEFINE_float("default_ranges_max", None, "Default range max for tensors without FakeQuant ranges.")
flags.DEFINE_bool("embed_input_normalization", False, "As given to the export: the graph takes (pixel - 128) / 128.")
flags.DEFINE_bool("calibrated", False, "The export measures activation ranges on --calibration_images.")
cli.define_postprocessing_flags()  # as given to the export
flags.DEFINE_bool("synthetic", False, "The checkpoint is synthesized (random weights): the metadata says so.")
flags.DEFINE_string("labels", None, "Labels file, one class name per line, or a label_map.pbtxt; default "
                    "class_1..class_N.")
flags.DEFINE_string("metadata_out", None, "Where the JSON metadata is written.")
flags.DEFINE_string("labels_out", None, "Where the labels file is written.")
flags.mark_flags_as_required(["pipeline_config_path", "metadata_out", "labels_out"])


def main() -> None:
    spec = pipeline_config.read(FLAGS.pipeline_config_path, FLAGS.config_override)
    ranges = None
    if FLAGS.default_ranges_min is not None or FLAGS.default_ranges_max is not None:
        ranges = (FLAGS.default_ranges_min or 0.0, FLAGS.default_ranges_max or 0.0)
    settings = contract.resolve(spec, contract.ConverterSettings(
        inference_type=FLAGS.inference_type or None,
        input_shape=tuple(int(dim) for dim in FLAGS.input_shape),
        mean_value=FLAGS.mean_value,
        std_value=FLAGS.std_value,
        default_ranges=ranges,
        embed_input_normalization=FLAGS.embed_input_normalization,
        calibrated=FLAGS.calibrated,
    ))
    postprocessing = cli.postprocessing_from_flags()
    names = label_map.read_labels(FLAGS.labels, spec.num_classes) if FLAGS.labels else None
    outputs = {
        FLAGS.metadata_out: contract.metadata_json(contract.metadata(spec, settings, postprocessing, FLAGS.synthetic)),
        FLAGS.labels_out: contract.labels(spec, names, FLAGS.labels),
    }
    for path, text in outputs.items():
        atomic_files.write_file(path, text.encode())


if __name__ == "__main__":
    cli.run(main)
