"""Exports an SSD detection checkpoint as a TFLite-ready frozen graph.

Same flags and outputs as the classic object_detection/export_tflite_ssd_graph.py,
running on TensorFlow 2 in graph mode:

  export_tflite_ssd_graph --pipeline_config_path=pipeline.config \
      --trained_checkpoint_prefix=model.ckpt --output_directory=out \
      --add_postprocessing_op=true

writes out/tflite_graph.pb and out/tflite_graph.pbtxt.
"""

import time

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import export
from ssd_tflite.graph_contract import PostProcessingFlags

FLAGS = flags.FLAGS
flags.DEFINE_string("pipeline_config_path", None, "Path to a pipeline.config of an SSD model.")
flags.DEFINE_string("trained_checkpoint_prefix", None, "Checkpoint prefix, e.g. path/to/model.ckpt.")
flags.DEFINE_string("output_directory", None, "Where tflite_graph.pb and tflite_graph.pbtxt are written.")
flags.DEFINE_bool("add_postprocessing_op", True, "End the graph in the TFLite_Detection_PostProcess custom op.")
flags.DEFINE_integer("max_detections", 10, "Maximum number of detections (boxes) to show.")
flags.DEFINE_integer("max_classes_per_detection", 1, "Number of classes to display per detection box.")
flags.DEFINE_integer("detections_per_class", 100, "Number of anchors used per class in regular NMS.")
flags.DEFINE_bool("use_regular_nms", False, "Per-class (regular) NMS instead of the faster class-agnostic NMS.")
flags.DEFINE_string("config_override", "", "pipeline_pb2.TrainEvalPipelineConfig text proto merged on top of the config.")
flags.DEFINE_bool("write_pbtxt", True, "Also write the text form tflite_graph.pbtxt (large for big models).")
flags.DEFINE_bool("embed_input_normalization", False,
                  "Make the graph input (pixel - 128) / 128 for every feature extractor and apply the "
                  "extractor's exact preprocessing inside the graph (needed for uint8 ResNet50 FPN models).")
flags.mark_flags_as_required(["pipeline_config_path", "trained_checkpoint_prefix", "output_directory"])


def main() -> None:
    start = time.monotonic()
    exported = export.export_tflite_graph(
        FLAGS.pipeline_config_path,
        FLAGS.trained_checkpoint_prefix,
        FLAGS.output_directory,
        add_postprocessing_op=FLAGS.add_postprocessing_op,
        postprocessing=PostProcessingFlags(
            max_detections=FLAGS.max_detections,
            max_classes_per_detection=FLAGS.max_classes_per_detection,
            detections_per_class=FLAGS.detections_per_class,
            use_regular_nms=FLAGS.use_regular_nms,
        ),
        config_override=FLAGS.config_override,
        write_pbtxt=FLAGS.write_pbtxt,
        embed_input_normalization=FLAGS.embed_input_normalization,
    )
    logging.info("Exported %d anchors over feature maps %s to %s in %.1f s",
                 exported.anchors.shape[0], exported.feature_map_shapes, FLAGS.output_directory,
                 time.monotonic() - start)


if __name__ == "__main__":
    cli.run(main)
