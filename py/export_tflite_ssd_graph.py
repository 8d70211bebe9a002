"""Exports an SSD detection checkpoint as a TFLite-ready frozen graph.

Same flags and outputs as the classic object_detection/export_tflite_ssd_graph.py,
running on TensorFlow 2 in graph mode:

  export_tflite_ssd_graph --pipeline_config_path=pipeline.config \
      --trained_checkpoint_prefix=model.ckpt --output_directory=out \
      --add_postprocessing_op=true

writes out/tflite_graph.pb and out/tflite_graph.pbtxt. Our additions:
--embed_input_normalization and --calibration_images (uint8 builds of float
checkpoints with measured ranges).
"""

import time

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import export

FLAGS = flags.FLAGS
flags.DEFINE_string("pipeline_config_path", None, "Path to a pipeline.config of an SSD model.")
flags.DEFINE_string("trained_checkpoint_prefix", None, "Checkpoint prefix, e.g. path/to/model.ckpt.")
flags.DEFINE_string("output_directory", None, "Where tflite_graph.pb and tflite_graph.pbtxt are written.")
flags.DEFINE_bool("add_postprocessing_op", True, "End the graph in the TFLite_Detection_PostProcess custom op.")
cli.define_postprocessing_flags()
flags.DEFINE_string("config_override", "", "pipeline_pb2.TrainEvalPipelineConfig text proto merged on top of the config.")
flags.DEFINE_bool("write_pbtxt", True, "Also write the text form tflite_graph.pbtxt (large for big models).")
flags.DEFINE_bool("embed_input_normalization", False,
                  "Make the graph input (pixel - 128) / 128 for every feature extractor and apply the "
                  "extractor's exact preprocessing inside the graph (needed for uint8 ResNet50 FPN models).")
flags.DEFINE_list("calibration_images", [],
                  "Images (comma-separated) to measure a float checkpoint's activation ranges on (our exporter "
                  "only): the graph gets FakeQuant nodes, so QUANTIZED_UINT8 conversion needs no default ranges.")
flags.mark_flags_as_required(["pipeline_config_path", "trained_checkpoint_prefix", "output_directory"])


def main() -> None:
    start = time.monotonic()
    exported = export.export_tflite_graph(
        FLAGS.pipeline_config_path,
        FLAGS.trained_checkpoint_prefix,
        FLAGS.output_directory,
        add_postprocessing_op=FLAGS.add_postprocessing_op,
        postprocessing=cli.postprocessing_from_flags(),
        config_override=FLAGS.config_override,
        write_pbtxt=FLAGS.write_pbtxt,
        embed_input_normalization=FLAGS.embed_input_normalization,
        calibration_images=FLAGS.calibration_images,
    )
    logging.info("Exported %d anchors over feature maps %s to %s in %.1f s",
                 exported.anchors.shape[0], exported.feature_map_shapes, FLAGS.output_directory,
                 time.monotonic() - start)


if __name__ == "__main__":
    cli.run(main)
