"""The images a detector trains on."""
from typing import List

from detectron2.data import get_detection_dataset_dicts

from .datasets.errors import DatasetAnnotationError


def detection_training_dicts(cfg) -> List[dict]:
    """The dataset dicts of ``DATASETS.TRAIN``, without the images that hold no annotated object
    when ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` (the default); a training set with nothing left
    is a DatasetAnnotationError naming it (not Detectron2's bare assertion)."""
    names = list(cfg.DATASETS.TRAIN)
    try:
        return get_detection_dataset_dicts(
            names, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    except AssertionError as e:
        raise DatasetAnnotationError(
            f"DATASETS.TRAIN {names}: no training image left ({e}). Every image of the split "
            f"holds no annotated object of the dataset's classes: check the annotation files "
            f"and the class names, or set DATALOADER.FILTER_EMPTY_ANNOTATIONS False to train on "
            f"images without objects") from None
