"""Parts shared by the methods; importing this module registers them with Detectron2."""
from . import backbone, meta_arch, prompts, roi_heads  # noqa: F401  (registration)
from .clip_classifier import ClipImageClassifier

__all__ = ["ClipImageClassifier"]
