"""Reading what models need from dataset metadata."""
import difflib
from typing import List, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog


def check_registered(names: Sequence[str], key: str = "DATASETS") -> None:
    """Raise ValueError for a name in ``names`` that is not in Detectron2's DatasetCatalog, with
    the registered names closest to it."""
    registered = DatasetCatalog.list()
    for name in names:
        if name not in registered:
            close = difflib.get_close_matches(name, registered, n=5, cutoff=0.6)
            raise ValueError(f"{key}: dataset {name!r} is not registered; closest registered "
                             f"names: {', '.join(close) or 'none'} (datasets/README.md lists "
                             f"every built-in name)")


def class_names_from_cfg(cfg) -> List[str]:
    """``thing_classes`` of the first training dataset (else the first test dataset)."""
    names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
    if not names:
        raise ValueError("DATASETS.TRAIN and DATASETS.TEST are empty: models take their class "
                         "names from the dataset metadata")
    classes = MetadataCatalog.get(names[0]).get("thing_classes", None)
    if not classes:
        check_registered(names[:1], "DATASETS.TRAIN" if cfg.DATASETS.TRAIN else "DATASETS.TEST")
        raise ValueError(f"dataset {names[0]!r} has no thing_classes in its metadata")
    return list(classes)
