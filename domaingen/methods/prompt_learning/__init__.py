"""Prompt-learning baselines on CLIP: zero-shot CLIP, CoOp (Zhou et al., IJCV 2022) and CoCoOp
(Zhou et al., CVPR 2022)."""
from .method import CoCoOpMethod, CoOpMethod, ZeroShotCLIPMethod
from .models import CoCoOpClassifier, CoOpClassifier, ZeroShotCLIPClassifier

__all__ = [
    "CoCoOpClassifier", "CoCoOpMethod", "CoOpClassifier", "CoOpMethod", "ZeroShotCLIPClassifier",
    "ZeroShotCLIPMethod",
]
