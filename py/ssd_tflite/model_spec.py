"""The typed settings of one SSD model: what `pipeline_config` reads from a pipeline.config.

They hold every field that shapes the exported graph, already checked, so
the builders (architectures, box predictors, anchors) can trust them.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class SsdAnchors:
    """`ssd_anchor_generator`: hand-picked scales per feature map (SSD paper)."""
    num_layers: int
    min_scale: float
    max_scale: float
    scales: tuple[float, ...]
    aspect_ratios: tuple[float, ...]
    interpolated_scale_aspect_ratio: float
    reduce_boxes_in_lowest_layer: bool
    base_anchor_height: float
    base_anchor_width: float


@dataclasses.dataclass(frozen=True)
class MultiscaleAnchors:
    """`multiscale_anchor_generator`: RetinaNet anchors on FPN levels."""
    min_level: int
    max_level: int
    anchor_scale: float
    aspect_ratios: tuple[float, ...]
    scales_per_octave: int
    normalize_coordinates: bool


@dataclasses.dataclass(frozen=True)
class FeatureExtractorSpec:
    """`model.ssd.feature_extractor`; the fpn_* fields matter to FPN architectures only."""
    type: str
    depth_multiplier: float
    min_depth: int
    use_depthwise: bool
    batch_norm_epsilon: float
    fpn_min_level: int
    fpn_max_level: int
    fpn_depth: int


@dataclasses.dataclass(frozen=True)
class BoxPredictorSpec:
    """`model.ssd.box_predictor`; depth is the weight-shared towers' (0 otherwise)."""
    weight_shared: bool
    kernel_size: int
    use_depthwise: bool
    num_layers_before_predictor: int
    depth: int
    batch_norm_epsilon: float


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything about one SSD model that shapes its exported graph."""
    num_classes: int
    height: int
    width: int
    feature_extractor: FeatureExtractorSpec
    box_predictor: BoxPredictorSpec
    anchors: SsdAnchors | MultiscaleAnchors
    box_coder_scales: tuple[float, float, float, float]  # y, x, height, width
    score_converter: str
    logit_scale: float
    nms_score_threshold: float
    nms_iou_threshold: float
    quantized: bool
    use_moving_averages: bool

    @property
    def num_anchors_per_location(self) -> tuple[int, ...]:
        """Anchors per cell of each feature map, in feature-map order."""
        if isinstance(self.anchors, MultiscaleAnchors):
            levels = self.anchors.max_level - self.anchors.min_level + 1
            return (len(self.anchors.aspect_ratios) * self.anchors.scales_per_octave,) * levels
        per_layer = len(self.anchors.aspect_ratios) + (self.anchors.interpolated_scale_aspect_ratio > 0)
        counts = [per_layer] * self.anchors.num_layers
        if self.anchors.reduce_boxes_in_lowest_layer:
            counts[0] = 3
        return tuple(counts)
