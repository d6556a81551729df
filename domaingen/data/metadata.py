"""Reading what models need from dataset metadata."""
from typing import List

from detectron2.data import MetadataCatalog


def class_names_from_cfg(cfg) -> List[str]:
    """``thing_classes`` of the first training dataset (else the first test dataset)."""
    names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
    if not names:
        raise ValueError("DATASETS.TRAIN and DATASETS.TEST are empty: models take their class "
                         "names from the dataset metadata")
    classes = MetadataCatalog.get(names[0]).get("thing_classes", None)
    if not classes:
        raise ValueError(f"dataset {names[0]!r} has no thing_classes in its metadata")
    return list(classes)
