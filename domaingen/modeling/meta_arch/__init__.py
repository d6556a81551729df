"""Meta-architectures registered in Detectron2's META_ARCH_REGISTRY."""
from .adclip import ADCLIPClassifier
from .clip_classifiers import (
    ClipImageClassifier,
    CoCoOpClassifier,
    CoOpClassifier,
    ZeroShotCLIPClassifier,
)
from .clip_gap_rcnn import ClipGapRCNN
from .clip_rcnn import ClipRCNN
from .spg import SPGClassifier

__all__ = [
    "ADCLIPClassifier",
    "ClipGapRCNN", "ClipImageClassifier", "ClipRCNN", "CoCoOpClassifier", "CoOpClassifier",
    "SPGClassifier", "ZeroShotCLIPClassifier",
]
