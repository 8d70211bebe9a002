"""Rebuilds a checkpoint from a quantized TOCO `detect.tflite` and its pipeline.config.

  tflite_to_checkpoint --tflite_file=detect.tflite --pipeline_config_path=pipeline.config \
      --output_directory=recovered [--float]

writes recovered/model.ckpt.{index,data-00000-of-00001}, recovered/checkpoint
and recovered/pipeline.config, with the variable layout the export reads (SSD
MobileNet v1 or v2, quantization-aware, any depth multiplier and class count),
and prints the export and converter flags that give the model back: the
post-processing settings and input statistics read from the model, and
--ignore_weights_narrow_range for models made by TOCO before it honoured
narrow_range (mid-2018).

With --float, the checkpoint holds the same dequantized weights without any
FakeQuant range (`*_quant/min|max`) and the config has no `graph_rewriter`:
exported and converted FLOAT, they give a float model of the quantized
model's own weights, whose input is (pixel - mean) / std with the model's
input statistics.
"""

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import checkpoint_files, pipeline_config, reconstruction

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite_file", None, "A QUANTIZED_UINT8 detect.tflite made by TOCO (or by //cli:toco).")
flags.DEFINE_string("pipeline_config_path", None, "The config the model was trained with.")
flags.DEFINE_string("output_directory", None, "Folder for model.ckpt.*, checkpoint and pipeline.config.")
flags.DEFINE_bool("float", False, "Write a float checkpoint and config (no FakeQuant ranges, no graph_rewriter), "
                  "for a FLOAT conversion of the model's own weights.")
flags.mark_flags_as_required(["tflite_file", "pipeline_config_path", "output_directory"])


def _converter_flags(recovered: reconstruction.Reconstruction, float_model: bool) -> str:
    if float_model:
        return "--inference_type=FLOAT --allow_custom_ops"
    return (f"--inference_type=QUANTIZED_UINT8 --mean_values={recovered.mean_value:g}"
            f" --std_values={recovered.std_value:g} --allow_custom_ops"
            + ("" if recovered.weights_narrow_range else " --ignore_weights_narrow_range"))


def _float_config(path: str) -> str:
    with open(path, encoding="utf-8") as config:  # pipeline_config.read has read it already
        return reconstruction.float_config(config.read(), path)


def main() -> None:
    spec = pipeline_config.read(FLAGS.pipeline_config_path)
    recovered = reconstruction.reconstruct(FLAGS.tflite_file, spec)
    if FLAGS.float:
        values = recovered.float_values()
        checkpoint_files.write_directory(FLAGS.output_directory, values, FLAGS.pipeline_config_path,
                                         config_text=_float_config(FLAGS.pipeline_config_path))
    else:
        values = recovered.values
        checkpoint_files.write_directory(FLAGS.output_directory, values, FLAGS.pipeline_config_path)
    post = recovered.postprocessing
    export_flags = (f"--max_detections={post.max_detections}"
                    f" --max_classes_per_detection={post.max_classes_per_detection}"
                    f" --detections_per_class={post.detections_per_class}"
                    f" --use_regular_nms={str(post.use_regular_nms).lower()}")
    logging.info("Wrote %d variables to %s", len(values), FLAGS.output_directory)
    if FLAGS.float:
        logging.info("The float model's input is (pixel - %g) / %g, as the quantized model's", recovered.mean_value,
                     recovered.std_value)
    else:
        for name in recovered.moved_zero_points:
            logging.warning("%s will come back with its zero point one off: its TOCO range exceeds the "
                            "concatenation it feeds by over half a step, which the converter's rounding cannot "
                            "reproduce", name)
    print(f"export_tflite_ssd_graph flags: {export_flags}")
    print(f"toco flags: {_converter_flags(recovered, FLAGS.float)}")


if __name__ == "__main__":
    cli.run(main)
