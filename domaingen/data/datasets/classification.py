"""Classification datasets for domain generalization and adaptation: loaders and registration.

Dataset dicts are ``{"file_name", "image_id", "label", "domain"}`` and names are
``<dataset>_<domain>_<split>``. Paths are relative to ``$DETECTRON2_DATASETS`` (default
``datasets``); see "Classification datasets" in ``datasets/README.md``. Nothing is read at
registration time and nothing is ever written into the dataset folders.
"""
import functools
import hashlib
import logging
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.catalog import Metadata

from ..images import image_extensions
from .builtin import default_root
from .errors import DatasetAnnotationError, DatasetLayoutError

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSIFICATION_DATASETS",
    "PACS_CLASSES",
    "SYNTHETIC_DOMAINS",
    "SYNTHETIC_DOMAINS_CLASSES",
    "VISDA17_CLASSES",
    "VLCS_CLASSES",
    "classification_classes",
    "load_classification",
    "register_all_classification",
    "split_per_class",
]

PACS_CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
VLCS_CLASSES = ("bird", "car", "chair", "dog", "person")
VISDA17_CLASSES = (
    "aeroplane", "bicycle", "bus", "car", "horse", "knife",
    "motorcycle", "person", "plant", "skateboard", "train", "truck",
)
SYNTHETIC_DOMAINS = ("photo", "sketch", "cartoon", "painting", "neon")
SYNTHETIC_DOMAINS_CLASSES = ("circle", "ring", "square", "star", "triangle")
# Per-class share kept for training; the rest is the validation split.
DOMAINBED_TRAIN_FRACTION = 0.7  # of each domain (folder layouts)
DOMAINNET_TRAIN_FRACTION = 0.9  # of the official DomainNet train list
SPLIT_SEED = 0


def _same(*names: str) -> Dict[str, str]:
    return {n: n for n in names}


# dataset -> (folder under the root, {domain: domain folder}, fixed class list or None = folder names)
DOMAINBED_LAYOUTS: Dict[str, Tuple[str, Dict[str, str], Optional[Tuple[str, ...]]]] = {
    "pacs": ("PACS", _same("art_painting", "cartoon", "photo", "sketch"), PACS_CLASSES),
    "vlcs": (
        "VLCS",
        {"caltech": "Caltech101", "labelme": "LabelMe", "sun": "SUN09", "pascal": "VOC2007"},
        VLCS_CLASSES,
    ),
    "office_home": (
        "office_home",
        {"art": "Art", "clipart": "Clipart", "product": "Product", "real_world": "Real World"},
        None,
    ),
    "terra_incognita": (
        "terra_incognita", _same("location_100", "location_38", "location_43", "location_46"), None
    ),
    "synthetic_domains": ("synthetic_domains", _same(*SYNTHETIC_DOMAINS), SYNTHETIC_DOMAINS_CLASSES),
}
DOMAINNET_DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
MINI_DOMAINNET_DOMAINS = ("clipart", "painting", "real", "sketch")
# VisDA-2017 domain -> (folder under visda17/, the one split it provides)
VISDA17_LAYOUT = {"synthetic": ("train", "train"), "real": ("validation", "test")}

# dataset -> domain -> registered splits
CLASSIFICATION_DATASETS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    **{key: {d: ("train", "val", "test") for d in spec[1]} for key, spec in DOMAINBED_LAYOUTS.items()},
    "domainnet": {d: ("train", "val", "test") for d in DOMAINNET_DOMAINS},
    "mini_domainnet": {d: ("train", "test") for d in MINI_DOMAINNET_DOMAINS},
    "visda17": {d: (split,) for d, (_, split) in VISDA17_LAYOUT.items()},
}
# datasets whose class list is known without reading the data
_FIXED_CLASSES = {
    **{key: spec[2] for key, spec in DOMAINBED_LAYOUTS.items() if spec[2] is not None},
    "visda17": VISDA17_CLASSES,
}


def _check_choice(kind: str, value: str, valid: Iterable[str]) -> None:
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"Unknown {kind} {value!r}; valid: {', '.join(valid)}")


def split_per_class(
    dicts: Sequence[dict], train_fraction: float, seed: int = SPLIT_SEED
) -> Tuple[List[dict], List[dict]]:
    """Deterministic per-class (train, val) split of dataset dicts, each keeping the input order.

    Within each class, images are shuffled by the SHA-1 of ``"<seed>/<image_id>"`` (independent
    of platform, library versions and listing order) and the first
    ``floor(train_fraction * n + 0.5)`` go to train.
    """
    by_class: Dict[int, List[int]] = {}
    for i, d in enumerate(dicts):
        by_class.setdefault(d["label"], []).append(i)
    train_ids = set()
    for indices in by_class.values():
        order = sorted(indices, key=lambda i: hashlib.sha1(f"{seed}/{dicts[i]['image_id']}".encode()).digest())
        train_ids.update(order[: math.floor(train_fraction * len(indices) + 0.5)])
    train = [d for i, d in enumerate(dicts) if i in train_ids]
    val = [d for i, d in enumerate(dicts) if i not in train_ids]
    return train, val


def _pick(dicts: List[dict], split: str, train_fraction: float) -> List[dict]:
    """``test`` is everything; ``train``/``val`` are the two parts of :func:`split_per_class`."""
    if split == "test":
        return dicts
    train, val = split_per_class(dicts, train_fraction)
    return train if split == "train" else val


# ---------------------------------------------------------------- DomainBed folder layout


def _subfolders(path: str) -> List[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _domainbed_classes(
    dataset_dir: str, domain_folders: Iterable[str], class_names: Optional[Sequence[str]] = None
) -> List[str]:
    """Class names of a ``<domain>/<class>/<image>`` tree; every domain must hold the same class folders.

    Without ``class_names`` the classes are the sorted folder names; with them, the folders
    must be exactly those classes.
    """
    if not os.path.isdir(dataset_dir):
        raise DatasetLayoutError(f"Dataset folder not found: {dataset_dir}")
    present = {}
    for folder in domain_folders:
        domain_dir = os.path.join(dataset_dir, folder)
        if not os.path.isdir(domain_dir):
            raise DatasetLayoutError(f"Domain folder not found: {domain_dir}")
        present[domain_dir] = set(_subfolders(domain_dir))
    expected = list(class_names) if class_names else sorted(set().union(*present.values()))
    if not expected:
        raise DatasetLayoutError(f"No class folders in the domain folders of {dataset_dir}")
    for domain_dir, names in present.items():
        missing = [c for c in expected if c not in names]
        if missing:
            raise DatasetLayoutError(
                f"Class folder missing: {os.path.join(domain_dir, missing[0])}; every domain folder "
                f"of {dataset_dir} must hold the same {len(expected)} class folders"
            )
        extra = sorted(names - set(expected))
        if extra:
            raise DatasetLayoutError(
                f"Unexpected class folder: {os.path.join(domain_dir, extra[0])}; "
                f"expected only: {', '.join(expected)}"
            )
    return expected


def _load_domain_folder(dataset_dir: str, folder: str, domain: str, class_names: Sequence[str]) -> List[dict]:
    """Every image (any format PIL opens) of one domain folder, classes in label order, files
    sorted by name; other files are skipped with a warning, a class without images is an error."""
    dicts, empty, skipped = [], [], []
    extensions = image_extensions()
    for label, cls in enumerate(class_names):
        class_dir = os.path.join(dataset_dir, folder, cls)
        files = [f for f in sorted(os.listdir(class_dir)) if not f.startswith(".")]
        images = [f for f in files if f.lower().endswith(extensions)]
        skipped += [os.path.join(class_dir, f) for f in files if f not in images]
        if not images:
            empty.append(class_dir)
        dicts += [{"file_name": os.path.join(class_dir, f), "image_id": f"{folder}/{cls}/{f}",
                   "label": label, "domain": domain} for f in images]
    if empty:
        raise DatasetLayoutError(
            f"No images in {len(empty)} class folder(s): {', '.join(empty[:5])}; every class "
            f"needs images in every domain (image formats: those PIL opens, e.g. .jpg .png .bmp "
            f".webp)")
    if skipped:
        logger.warning(f"{os.path.join(dataset_dir, folder)}: skipped {len(skipped)} files that "
                       f"are not images PIL opens, e.g. {', '.join(skipped[:3])}")
    return dicts


# ---------------------------------------------------------------- image lists (DomainNet, VisDA)


def _list_files(dataset: str, domain: str, root: str) -> Dict[str, Tuple[str, str]]:
    """split -> (list file, folder its paths are relative to) for one domain of a list dataset."""
    if dataset == "visda17":
        folder, split = VISDA17_LAYOUT[domain]
        base = os.path.join(root, "visda17", folder)
        return {split: (os.path.join(base, "image_list.txt"), base)}
    base = os.path.join(root, "domainnet")
    lists = os.path.join(base, "splits_mini") if dataset == "mini_domainnet" else base
    return {s: (os.path.join(lists, f"{domain}_{s}.txt"), base) for s in ("train", "test")}


def _read_list(list_file: str) -> List[Tuple[str, str, int, int]]:
    """(relative path, class folder, label, line number) of each line ``<...>/<class>/<file> <label>``."""
    if not os.path.isfile(list_file):
        raise DatasetLayoutError(f"Split file not found: {list_file}")
    entries, first_line = [], {}
    with open(list_file, encoding="utf-8-sig") as f:  # BOM and CRLF as Windows editors write
        for n, line in enumerate(f, 1):
            parts = line.strip().rsplit(maxsplit=1)
            if not parts:
                continue
            path = parts[0].replace("\\", "/")
            if len(parts) != 2 or "/" not in path or not parts[1].lstrip("-").isdigit():
                raise DatasetAnnotationError(
                    f"Malformed line {n} of {list_file}: {line.strip()!r}; expected '<class>/<file> <label>' "
                    "(any folders before <class> are kept)"
                )
            if first_line.setdefault(path, n) != n:
                raise DatasetAnnotationError(
                    f"Image {path!r} is listed twice in {list_file}: lines {first_line[path]} and {n}; "
                    "every image may appear once per list"
                )
            entries.append((path, path.split("/")[-2], int(parts[1]), n))
    if not entries:
        raise DatasetLayoutError(f"Split file lists no images: {list_file}")
    return entries


@functools.lru_cache(maxsize=None)
def _list_classes(list_files: Tuple[Tuple[str, int, int], ...]) -> Tuple[str, ...]:
    """Class names ordered by label, from the class folders named in the split files.

    ``list_files`` holds (path, mtime_ns, size) so that an edited file is read again.
    """
    names: Dict[int, Tuple[str, str]] = {}
    labels: Dict[str, Tuple[int, str]] = {}
    for list_file, _, _ in list_files:
        for _, cls, label, n in _read_list(list_file):
            first = names.setdefault(label, (cls, list_file))
            if first[0] != cls:
                raise DatasetAnnotationError(
                    f"Label {label} is class {cls!r} at line {n} of {list_file} "
                    f"but class {first[0]!r} in {first[1]}"
                )
            first = labels.setdefault(cls, (label, list_file))
            if first[0] != label:
                raise DatasetAnnotationError(
                    f"Class {cls!r} has label {label} at line {n} of {list_file} but label {first[0]} in {first[1]}"
                )
    unused = [i for i in range(len(names)) if i not in names]
    if unused:
        raise DatasetAnnotationError(
            f"Labels of {', '.join(f for f, _, _ in list_files)} are not 0..{len(names) - 1}: "
            f"label {unused[0]} never appears"
        )
    return tuple(names[i][0] for i in range(len(names)))


def _load_list(list_file: str, image_root: str, domain: str, class_names: Sequence[str]) -> List[dict]:
    dicts = []
    for path, cls, label, n in _read_list(list_file):
        if not 0 <= label < len(class_names) or class_names[label] != cls:
            known = f"class {class_names[label]!r}" if 0 <= label < len(class_names) else "out of range"
            raise DatasetAnnotationError(
                f"Line {n} of {list_file}: class folder {cls!r} with label {label}, but label {label} is {known}"
            )
        file_name = os.path.join(image_root, path)
        if not os.path.isfile(file_name):
            raise DatasetLayoutError(f"Image not found: {file_name} (line {n} of {list_file})")
        dicts.append({"file_name": file_name, "image_id": path, "label": label, "domain": domain})
    return dicts


# ---------------------------------------------------------------- public entry points


def classification_classes(dataset: str, root: Optional[str] = None) -> List[str]:
    """Class names of ``dataset`` in label order.

    Fixed for PACS, VLCS, VisDA-2017 and the synthetic domains; the sorted class folders for
    Office-Home and TerraIncognita; for (Mini-)DomainNet, the class folders named in every
    split file present, ordered by label.
    """
    _check_choice("dataset", dataset, CLASSIFICATION_DATASETS)
    root = default_root() if root is None else root
    if dataset in DOMAINBED_LAYOUTS:
        folder, domains, fixed = DOMAINBED_LAYOUTS[dataset]
        return _domainbed_classes(os.path.join(root, folder), domains.values(), fixed)
    if dataset == "visda17":
        return list(VISDA17_CLASSES)
    files = [f for d in CLASSIFICATION_DATASETS[dataset] for f, _ in _list_files(dataset, d, root).values()]
    present = tuple((f, os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in files if os.path.isfile(f))
    if not present:
        raise DatasetLayoutError(f"Split file not found: {files[0]} (nor any other split file of {dataset})")
    return list(_list_classes(present))


def load_classification(dataset: str, domain: str, split: str, root: Optional[str] = None) -> List[dict]:
    """Dataset dicts of ``<dataset>_<domain>_<split>`` under ``root`` (default: the datasets root).

    Folder layouts: ``train``/``val`` are a 70/30 per-class split of the domain, ``test`` is all
    of it. DomainNet: ``train``/``val`` are a 90/10 per-class split of the official train list,
    ``test`` the official test list. Mini-DomainNet and VisDA-2017: their lists as they are.
    """
    _check_choice("dataset", dataset, CLASSIFICATION_DATASETS)
    _check_choice(f"{dataset} domain", domain, CLASSIFICATION_DATASETS[dataset])
    _check_choice(f"{dataset} split", split, CLASSIFICATION_DATASETS[dataset][domain])
    root = default_root() if root is None else root
    classes = classification_classes(dataset, root)
    if dataset in DOMAINBED_LAYOUTS:
        folder, domains, _ = DOMAINBED_LAYOUTS[dataset]
        dicts = _load_domain_folder(os.path.join(root, folder), domains[domain], domain, classes)
        return _pick(dicts, split, DOMAINBED_TRAIN_FRACTION)
    lists = _list_files(dataset, domain, root)
    if dataset == "domainnet" and split != "test":
        return _pick(_load_list(*lists["train"], domain, classes), split, DOMAINNET_TRAIN_FRACTION)
    return _load_list(*lists[split], domain, classes)


class _LazyClassesMetadata(Metadata):
    """Metadata whose ``thing_classes`` are read from the dataset on first access.

    That access raises the loader's error (naming the missing path) when the data is absent.
    """

    __slots__ = ("read_classes",)  # a slot, so it stays out of as_dict() and repr

    def __getattr__(self, key):
        if key == "thing_classes":
            self.__dict__[key] = list(self.read_classes())
            return self.__dict__[key]
        return super().__getattr__(key)


def register_all_classification(root: Optional[str] = None, prefix: str = "") -> List[str]:
    """Register every classification split as ``<prefix><dataset>_<domain>_<split>``.

    Returns the names newly registered; names already in the ``DatasetCatalog`` are left
    untouched. Metadata: ``thing_classes`` (read lazily from disk for Office-Home,
    TerraIncognita and (Mini-)DomainNet), ``domain``, ``domains``, ``dataset``, ``split`` and
    ``evaluator_type="classification"``.
    """
    root = default_root() if root is None else root
    existing = set(DatasetCatalog.list())
    registered = []
    for dataset, domains in CLASSIFICATION_DATASETS.items():
        fixed = _FIXED_CLASSES.get(dataset)
        for domain, splits in domains.items():
            for split in splits:
                name = f"{prefix}{dataset}_{domain}_{split}"
                if name in existing:
                    continue
                DatasetCatalog.register(name, functools.partial(load_classification, dataset, domain, split, root))
                if fixed is None:
                    meta = MetadataCatalog[name] = _LazyClassesMetadata(name=name)
                    meta.read_classes = functools.partial(classification_classes, dataset, root)
                else:
                    MetadataCatalog.get(name).set(thing_classes=list(fixed))
                MetadataCatalog.get(name).set(
                    domain=domain,
                    domains=list(domains),
                    dataset=dataset,
                    split=split,
                    evaluator_type="classification",
                )
                registered.append(name)
    return registered


def register_class_folders(name: str, folder: str, domain: str,
                           class_names: Optional[Sequence[str]] = None) -> None:
    """Register ``folder/<class>/<image>`` as the classification dataset ``name`` of ``domain``
    (your own data: docs/datasets.md). Classes are ``class_names`` in label order, else the class
    folders sorted by name (read now: configs need them); images are listed when it is loaded."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise DatasetLayoutError(f"Dataset folder not found: {folder}")
    classes = list(class_names) if class_names else _subfolders(folder)
    DatasetCatalog.register(name, functools.partial(
        _load_domain_folder, os.path.dirname(folder), os.path.basename(folder), domain, classes))
    MetadataCatalog.get(name).set(thing_classes=classes, domain=domain,
                                  evaluator_type="classification")

