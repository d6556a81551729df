"""Models; importing this module registers them with Detectron2's registries."""
from . import augmentation, backbone, meta_arch, roi_heads  # noqa: F401
