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

from ssd_tflite import atomic_files, conversion

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Frozen TensorFlow GraphDef (binary).")
flags.DEFINE_string("output_file", None, "Where the .tflite flatbuffer is written.")
flags.DEFINE_enum("input_format", "TENSORFLOW_GRAPHDEF", ["TENSORFLOW_GRAPHDEF"], "Format of --input_file.")
flags.DEFINE_enum("output_format", "TFLITE", ["TFLITE"], "Format of --output_file.")
flags.DEFINE_string("input_shapes", None, "Shapes of the input arrays: comma-separated dims, ':' between arrays; "
                    "default: the shapes of the graph's placeholders.")
flags.DEFINE_list("input_arrays", None, "Names of the input arrays.")
flags.DEFINE_list("output_arrays", None, "Names of the output arrays.")
flags.DEFINE_string("inference_type", "FLOAT", "FLOAT or QUANTIZED_UINT8: type of the model's arrays.")
flags.DEFINE_string("inference_input_type", None, "Type of the input arrays (default: --inference_type).")
flags.DEFINE_list("mean_values", [], "Per input: the uint8 value that means real 0 (real = (q - mean) / std).")
flags.DEFINE_list("std_values", [], "Per input: uint8 steps per real unit.")
flags.DEFINE_float("default_ranges_min", None, "Range min for arrays without a FakeQuant range.")
flags.DEFINE_float("default_ranges_max", None, "Range max for arrays without a FakeQuant range.")
flags.DEFINE_bool("change_concat_input_ranges", False, "Let concat inputs take the output range.")
flags.DEFINE_bool("allow_custom_ops", False, "Keep ops TFLite does not know as custom ops.")
flags.DEFINE_bool("ignore_weights_narrow_range", False,
                  "Quantize weights over all 256 levels, scale (max - min) / 255, whatever their FakeQuant's "
                  "narrow_range says: what TOCO did until mid-2018. Default: the FakeQuant's narrow_range.")
flags.mark_flags_as_required(["input_file", "output_file", "input_arrays", "output_arrays"])


def _floats(flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(value) for value in getattr(FLAGS, flag))
    except ValueError:
        raise conversion.ConversionError(f"--{flag}={','.join(getattr(FLAGS, flag))}: expected numbers") from None


def _shapes() -> tuple[tuple[int, ...], ...]:
    if FLAGS.input_shapes is None:
        return ()
    try:
        return tuple(tuple(int(dim) for dim in shape.split(",")) for shape in FLAGS.input_shapes.split(":"))
    except ValueError:
        raise conversion.ConversionError(
            f"--input_shapes={FLAGS.input_shapes}: expected comma-separated integers, ':' between arrays") from None


def main() -> None:
    ranges = (FLAGS.default_ranges_min, FLAGS.default_ranges_max)
    if (ranges[0] is None) != (ranges[1] is None):
        raise conversion.ConversionError("--default_ranges_min and --default_ranges_max go together")
    settings = conversion.ConversionSettings(
        input_arrays=tuple(FLAGS.input_arrays),
        output_arrays=tuple(FLAGS.output_arrays),
        input_shapes=_shapes(),
        inference_type=FLAGS.inference_type,
        inference_input_type=FLAGS.inference_input_type,
        mean_values=_floats("mean_values"),
        std_values=_floats("std_values"),
        default_ranges=None if ranges[0] is None else ranges,
        change_concat_input_ranges=FLAGS.change_concat_input_ranges,
        allow_custom_ops=FLAGS.allow_custom_ops,
        ignore_weights_narrow_range=FLAGS.ignore_weights_narrow_range,
    )
    start = time.monotonic()
    model = conversion.convert(FLAGS.input_file, settings)
    atomic_files.write_file(FLAGS.output_file, model)
    logging.info("Wrote %s (%d bytes, %s) in %.1f s", FLAGS.output_file, len(model), settings.inference_type,
                 time.monotonic() - start)


if __name__ == "__main__":
    cli.run(main)
