"""Exports an SSD checkpoint as a frozen TFLite-ready graph (`tflite_graph.pb`).

The graph takes `normalized_input_image_tensor` [1, H, W, 3] (the feature
extractor's preprocessed image, or (pixel - 128) / 128 with the embedded
normalization of `preprocessing`), computes `raw_outputs/box_encodings` [1, N, 4] and
`raw_outputs/class_predictions` [1, N, num_classes + 1] (after the config's
score converter), holds the anchors as the const `anchors` [N, 4], and, with
the post-processing op, ends in `TFLite_Detection_PostProcess`. Variables
become constants as the graph is built, so the graph is frozen by construction.
Quantization-aware configs, and float ones calibrated on images, get FakeQuant
nodes for the converter's QUANTIZED_UINT8 mode.
"""

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import text_format

from ssd_tflite import (anchors, architectures, atomic_files, box_predictors, calibration, pipeline_config,
                        preprocessing, quantization)
from ssd_tflite.checkpoint import CheckpointSource
from ssd_tflite.errors import InternalError, UserError
from ssd_tflite.layers import LayerBuilder, VariableSource
from ssd_tflite.model_spec import ModelSpec
from ssd_tflite.postprocess_op import add_to_graph_def
from ssd_tflite.tflite_graph import ANCHORS, BOX_ENCODINGS, CLASS_PREDICTIONS, INPUT_NAME, PostProcessingFlags

GRAPH_FILE = "tflite_graph.pb"
GRAPH_TEXT_FILE = "tflite_graph.pbtxt"


@dataclasses.dataclass
class ExportedGraph:
    graph_def: tf.compat.v1.GraphDef
    feature_map_shapes: list[tuple[int, int]]
    anchors: np.ndarray


def _convert_scores(logits: tf.Tensor, spec: ModelSpec) -> tf.Tensor:
    with tf.compat.v1.name_scope("Postprocessor"):
        if spec.logit_scale != 1.0:
            logits = tf.divide(logits, spec.logit_scale, name="scale_logits")
        if spec.score_converter == "SIGMOID":
            return tf.sigmoid(logits, name="convert_scores")
        if spec.score_converter == "SOFTMAX":
            return tf.nn.softmax(logits, name="convert_scores")
        return tf.identity(logits, name="convert_scores")


def _embedded_normalization(images: tf.Tensor, feature_extractor: str, fake_quantize: bool) -> tf.Tensor:
    scale, offset = preprocessing.embedding_affine(feature_extractor)
    with tf.compat.v1.name_scope("Preprocessor/"):
        images = tf.add(tf.multiply(images, scale, name="mul"), offset, name="sub")
    if not fake_quantize:
        return images
    # The uint8 input covers [-1, 127/128]; the affine map gives the exact output range.
    ends = np.array([-1.0, 127.0 / 128.0])[:, np.newaxis] * scale + offset
    return quantization.fake_quant(images, float(ends.min()), float(ends.max()), narrow_range=False,
                                   name="Preprocessor/act_quant")


def build_graph(spec: ModelSpec, source: VariableSource, postprocessing: PostProcessingFlags | None,
                graph: tf.Graph | None = None, embed_input_normalization: bool = False,
                fake_quantize: bool | None = None) -> ExportedGraph:
    """Builds the export graph in `graph` (a new one by default) and returns its GraphDef.

    `postprocessing` None leaves out the TFLite_Detection_PostProcess node;
    `embed_input_normalization` makes the input (pixel - 128) / 128 (see preprocessing);
    `fake_quantize` (default: the config's graph_rewriter.quantization) puts
    FakeQuant nodes with the source's ranges where quantization-aware graphs have them.
    """
    fake_quantize = spec.quantized if fake_quantize is None else fake_quantize
    graph = graph or tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, spec.height, spec.width, 3], name=INPUT_NAME)
        if embed_input_normalization:
            images = _embedded_normalization(images, spec.feature_extractor.type, fake_quantize)
        backbone = LayerBuilder(source, fake_quantize, spec.feature_extractor.batch_norm_epsilon)
        architecture = architectures.BY_TYPE[spec.feature_extractor.type]
        feature_maps = architecture.extract_features(backbone, images, spec.feature_extractor)
        heads = LayerBuilder(source, fake_quantize, spec.box_predictor.batch_norm_epsilon)
        box_encodings, logits = box_predictors.predict(heads, feature_maps, spec)
        tf.identity(box_encodings, name=BOX_ENCODINGS)
        tf.identity(_convert_scores(logits, spec), name=CLASS_PREDICTIONS)
        shapes = [(int(feature_map.shape[1]), int(feature_map.shape[2])) for feature_map in feature_maps]
        anchor_boxes = anchors.generate(spec.anchors, shapes, (spec.height, spec.width))
        if anchor_boxes.shape[0] != int(box_encodings.shape[1]):
            raise InternalError(f"{anchor_boxes.shape[0]} anchors but {box_encodings.shape[1]} box predictions")
        tf.constant(anchor_boxes, name=ANCHORS)
    graph_def = graph.as_graph_def()
    if postprocessing is not None:
        add_to_graph_def(graph_def, spec, postprocessing)
    return ExportedGraph(graph_def, shapes, anchor_boxes)


def _calibrated_source(spec: ModelSpec, source: VariableSource, image_paths: Sequence[str],
                       embed_input_normalization: bool) -> VariableSource:
    """`source` with activation ranges measured on the images (see calibration)."""
    if spec.quantized:
        raise UserError("--calibration_images: the config has graph_rewriter.quantization, so the checkpoint "
                        "holds its own FakeQuant ranges; calibration is for float checkpoints")
    normalization = preprocessing.graph_input(spec.feature_extractor.type, embed_input_normalization)
    images = calibration.load_images(image_paths, spec.height, spec.width, normalization)
    recorder = calibration.RangeRecorder(source)
    graph = tf.Graph()
    build_graph(spec, recorder, None, graph, embed_input_normalization, fake_quantize=True)
    logging.info("Calibrating %d activation ranges on %d image(s)", len(recorder.activations), len(images))
    return calibration.CalibratedSource(source, recorder.measure(graph, images))


def export_tflite_graph(pipeline_config_path: str, trained_checkpoint_prefix: str, output_directory: str,
                        add_postprocessing_op: bool = True,
                        postprocessing: PostProcessingFlags = PostProcessingFlags(),
                        config_override: str = "", write_pbtxt: bool = True,
                        embed_input_normalization: bool = False,
                        calibration_images: Sequence[str] = ()) -> ExportedGraph:
    """Reads config and checkpoint, builds the graph, and writes it to `output_directory`.

    With `calibration_images`, a float checkpoint's graph gets FakeQuant nodes
    with activation ranges measured on those images. Nothing is written unless
    the checkpoint matched the config exactly.
    """
    spec = pipeline_config.read(pipeline_config_path, config_override)
    checkpoint = CheckpointSource(trained_checkpoint_prefix, spec.use_moving_averages)
    source: VariableSource = checkpoint
    if calibration_images:
        source = _calibrated_source(spec, checkpoint, calibration_images, embed_input_normalization)
    exported = build_graph(spec, source, postprocessing if add_postprocessing_op else None,
                           embed_input_normalization=embed_input_normalization,
                           fake_quantize=spec.quantized or bool(calibration_images))
    checkpoint.verify(f"{pipeline_config_path} ({spec.feature_extractor.type}, "
                      f"{'quantized' if spec.quantized else 'float'}, {spec.num_classes} classes)")
    # Deterministic: map fields (node attrs) in key order, so equal graphs give equal bytes.
    files = {GRAPH_FILE: exported.graph_def.SerializeToString(deterministic=True)}
    if write_pbtxt:
        files[GRAPH_TEXT_FILE] = text_format.MessageToString(exported.graph_def).encode()
    atomic_files.write_files(output_directory, files)
    return exported
