"""A TOCO-compatible command line for TensorFlow's TFLite converter.

Accepts the flags of the classic `toco` binary for frozen TensorFlow graphs:

  toco --input_file=tflite_graph.pb --output_file=detect.tflite \
      --input_format=TENSORFLOW_GRAPHDEF --output_format=TFLITE \
      --input_shapes=1,300,300,3 --input_arrays=normalized_input_image_tensor \
      --output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,... \
      --inference_type=QUANTIZED_UINT8 --mean_values=128 --std_values=128 \
      --default_ranges_min=0 --default_ranges_max=255 --allow_custom_ops

QUANTIZED_UINT8 models come out in TOCO's layout: the post-processing op reads
uint8 box codes, scores and anchors, and tensors carry TOCO's short names.
"""

import time

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import atomic_files, conversion, converter_settings

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Frozen TensorFlow GraphDef (binary).")
flags.DEFINE_string("output_file", None, "Where the .tflite flatbuffer is written.")
converter_settings.define_flags()
flags.mark_flags_as_required(["input_file", "output_file"])


def main() -> None:
    settings = converter_settings.from_flags()
    start = time.monotonic()
    model = conversion.convert(FLAGS.input_file, settings)
    atomic_files.write_file(FLAGS.output_file, model)
    logging.info("Wrote %s (%d bytes, %s) in %.1f s", FLAGS.output_file, len(model), settings.inference_type,
                 time.monotonic() - start)


if __name__ == "__main__":
    cli.run(main)
