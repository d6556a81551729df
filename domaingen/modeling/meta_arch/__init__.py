"""The CLIP detector every detection method builds on, registered in META_ARCH_REGISTRY."""
from .clip_rcnn import ClipRCNN

__all__ = ["ClipRCNN"]
