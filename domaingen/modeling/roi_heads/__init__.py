"""ROI heads registered in Detectron2's ROI_HEADS_REGISTRY and their box predictors."""
from .clip_res5 import ClipRes5ROIHeads, detector_class_names
from .text_classifier import TextEmbeddingClassifier

__all__ = ["ClipRes5ROIHeads", "TextEmbeddingClassifier", "detector_class_names"]
