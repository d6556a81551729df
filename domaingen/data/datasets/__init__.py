"""Detection datasets for domain generalization; built-ins are registered at import."""
from .builtin import (
    CITYSCAPES_CLASSES,
    COMIC_WATERCOLOR_CLASSES,
    DIVERSE_WEATHER_CLASSES,
    DIVERSE_WEATHER_DOMAINS,
    FOGGY_CITYSCAPES_SUFFIX,
    default_root,
    register_all,
)
from .cityscapes import load_cityscapes_detection
from .errors import DatasetAnnotationError, DatasetLayoutError
from .voc_style import load_voc_style_instances, read_split_ids, register_voc_style

__all__ = [
    "CITYSCAPES_CLASSES",
    "COMIC_WATERCOLOR_CLASSES",
    "DIVERSE_WEATHER_CLASSES",
    "DIVERSE_WEATHER_DOMAINS",
    "FOGGY_CITYSCAPES_SUFFIX",
    "DatasetAnnotationError",
    "DatasetLayoutError",
    "default_root",
    "load_cityscapes_detection",
    "load_voc_style_instances",
    "read_split_ids",
    "register_all",
    "register_voc_style",
]

register_all()
