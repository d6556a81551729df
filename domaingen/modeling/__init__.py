"""Models; importing this module registers them with Detectron2's registries."""
from . import augmentation, backbone, meta_arch, prompts, roi_heads, spg  # noqa: F401
