"""Checks a model's converter settings against its pipeline.config; writes its contract and labels.

Used by the ssd_tflite_model rule beside the conversion, with the converter's
own flags (TOCO's, see converter_settings): a setting the config contradicts
(input shape, an unstated inference type of a quantization-aware config, one
mean/std for a per-channel normalization) fails the build, naming it.
"""

from ssd_tflite import cli
from absl import flags

from ssd_tflite import atomic_files, contract, converter_settings, label_map, pipeline_config

FLAGS = flags.FLAGS
flags.DEFINE_string("pipeline_config_path", None, "The model's pipeline.config.")
flags.DEFINE_string("config_override", "", "Text proto merged on top of the config.")
converter_settings.define_flags()  # as given to the converter
flags.DEFINE_bool("inference_type_stated", None, "The build states --inference_type rather than taking the rule's "
                  "default, which a quantization-aware config refuses; default: whether --inference_type is given.")
flags.DEFINE_bool("embed_input_normalization", False, "As given to the export: the graph takes (pixel - 128) / 128.")
flags.DEFINE_bool("calibrated", False, "The export measures activation ranges on --calibration_images.")
cli.define_postprocessing_flags()  # as given to the export
flags.DEFINE_bool("synthetic", False, "The checkpoint is synthesized (random weights): the contract says so.")
flags.DEFINE_string("labels", None, "Labels file, one class name per line, or a label_map.pbtxt; default "
                    "class_1..class_N.")
flags.DEFINE_string("contract_out", None, f"Where the model contract (<name>{contract.CONTRACT_SUFFIX}) is written.")
flags.DEFINE_string("labels_out", None, f"Where the labels file (<name>{contract.LABELS_SUFFIX}) is written.")
flags.mark_flags_as_required(["pipeline_config_path", "contract_out", "labels_out"])


def main() -> None:
    spec = pipeline_config.read(FLAGS.pipeline_config_path, FLAGS.config_override)
    settings = converter_settings.from_flags()
    export = contract.Export(cli.postprocessing_from_flags(), FLAGS.embed_input_normalization, FLAGS.calibrated)
    stated = FLAGS["inference_type"].present if FLAGS.inference_type_stated is None else FLAGS.inference_type_stated
    contract.check(spec, settings, export, stated)
    names = label_map.read_labels(FLAGS.labels, spec.num_classes) if FLAGS.labels else None
    outputs = {
        FLAGS.contract_out: contract.contract_json(contract.describe(spec, settings, export, FLAGS.synthetic)),
        FLAGS.labels_out: contract.labels(spec, names, FLAGS.labels),
    }
    for path, text in outputs.items():
        atomic_files.write_file(path, text.encode())


if __name__ == "__main__":
    cli.run(main)
