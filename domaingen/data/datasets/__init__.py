"""Detection and classification datasets for domain generalization; built-ins are registered at import."""
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
from .classification import (
    CLASSIFICATION_DATASETS,
    PACS_CLASSES,
    SYNTHETIC_DOMAINS,
    SYNTHETIC_DOMAINS_CLASSES,
    VISDA17_CLASSES,
    VLCS_CLASSES,
    classification_classes,
    load_classification,
    register_all_classification,
    register_class_folders,
    split_per_class,
)
from .dg_splits import DG_DATASETS, DG_PROTOCOLS, dg_split_names
from .errors import DatasetAnnotationError, DatasetLayoutError
from .voc_style import load_voc_style_instances, read_split_ids, register_voc_style

__all__ = [
    "CITYSCAPES_CLASSES",
    "CLASSIFICATION_DATASETS",
    "COMIC_WATERCOLOR_CLASSES",
    "DG_DATASETS",
    "DG_PROTOCOLS",
    "DIVERSE_WEATHER_CLASSES",
    "DIVERSE_WEATHER_DOMAINS",
    "FOGGY_CITYSCAPES_SUFFIX",
    "PACS_CLASSES",
    "SYNTHETIC_DOMAINS",
    "SYNTHETIC_DOMAINS_CLASSES",
    "VISDA17_CLASSES",
    "VLCS_CLASSES",
    "DatasetAnnotationError",
    "DatasetLayoutError",
    "classification_classes",
    "default_root",
    "dg_split_names",
    "load_classification",
    "load_cityscapes_detection",
    "load_voc_style_instances",
    "read_split_ids",
    "register_all",
    "register_all_classification",
    "register_class_folders",
    "register_voc_style",
    "split_per_class",
]

register_all()
register_all_classification()
