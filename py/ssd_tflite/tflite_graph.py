"""Tensor names and post-processing settings of the classic TFLite SSD export.

Kept free of TensorFlow imports so that light tools (the model contract) start fast.
"""

import dataclasses

INPUT_NAME = "normalized_input_image_tensor"
BOX_ENCODINGS = "raw_outputs/box_encodings"
CLASS_PREDICTIONS = "raw_outputs/class_predictions"
ANCHORS = "anchors"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
OUTPUT_ARRAYS = (POSTPROCESS_OP, f"{POSTPROCESS_OP}:1", f"{POSTPROCESS_OP}:2", f"{POSTPROCESS_OP}:3")


@dataclasses.dataclass(frozen=True)
class PostProcessingFlags:
    """The export's command-line settings of the op (upstream names and defaults)."""
    max_detections: int = 10
    max_classes_per_detection: int = 1
    detections_per_class: int = 100
    use_regular_nms: bool = False
