"""Embeds TFLite Model Metadata in a detect.tflite: what MediaPipe Tasks and TFLite Support need.

  populate_metadata --input_file=converted.tflite --output_file=detect.tflite \
      --labels=labels.txt --contract=detect_contract.json --name=detect --description="..."

The input's normalization comes from the model contract, `<name>_contract.json`
(as the ssd_tflite_model rule writes it), once the model is checked to be
what the contract says (its input's name, shape, type and uint8 quantization,
its outputs); the class names come from the labels file (one per line, by
class index), which is also packed into the model. With
--embed_metadata=false the checked model is written unchanged.
"""

from ssd_tflite import cli
from absl import flags, logging

from ssd_tflite import atomic_files, contract, flatbuffer_model, label_map, tflite_metadata
from ssd_tflite.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "The detect.tflite to describe.")
flags.DEFINE_string("output_file", None, "Where the model with metadata is written.")
flags.DEFINE_string("labels", None, "Class names, one per line in class-index order.")
flags.DEFINE_string("contract", None, f"The model contract (<name>{contract.CONTRACT_SUFFIX}): the input, its mean "
                    "and std, and the outputs.")
flags.DEFINE_string("name", None, "Model name.")
flags.DEFINE_string("description", "", "Model description.")
flags.DEFINE_string("version", "1", "Model version.")
flags.DEFINE_bool("embed_metadata", True, "Embed the metadata; false writes the model unchanged, once checked.")
flags.mark_flags_as_required(["input_file", "output_file", "labels", "contract", "name"])


def main() -> None:
    described = contract.read(FLAGS.contract)
    mean, std = contract.normalization(described, FLAGS.contract)
    labels = label_map.read_labels(FLAGS.labels)
    if not labels:
        raise InputError(f"{FLAGS.labels}: no class names")
    metadata = tflite_metadata.DetectorMetadata(FLAGS.name, FLAGS.description, FLAGS.version, tuple(mean),
                                                tuple(std), tuple(labels))
    try:
        with open(FLAGS.input_file, "rb") as model_file:
            content = model_file.read()
    except OSError as error:
        raise InputError(f"{FLAGS.input_file}: cannot read the model: {error.strerror}") from None
    model = flatbuffer_model.load(content, FLAGS.input_file)
    contract.check_model(described, FLAGS.contract, model, FLAGS.input_file)
    if not FLAGS.embed_metadata:
        atomic_files.write_file(FLAGS.output_file, content)
        return
    height, width, _ = flatbuffer_model.image_input(model, FLAGS.input_file)
    described_model = flatbuffer_model.with_metadata(content, FLAGS.input_file, tflite_metadata.METADATA_NAME,
                                                     tflite_metadata.metadata_buffer(metadata, height, width))
    atomic_files.write_file(FLAGS.output_file, tflite_metadata.with_labels_zip(described_model, labels))
    logging.info("Wrote %s with %s (%d labels)", FLAGS.output_file, tflite_metadata.METADATA_NAME, len(labels))


if __name__ == "__main__":
    cli.run(main)
