"""Meta-architectures registered in Detectron2's META_ARCH_REGISTRY."""
from .clip_rcnn import ClipRCNN

__all__ = ["ClipRCNN"]
