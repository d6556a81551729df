"""Paired source/target training loader for unsupervised domain adaptation (AD-CLIP).

Two Detectron2 train loaders, one over the labelled ``DATASETS.TRAIN`` and one over the
unlabelled ``DATASETS.TRAIN_UNLABELED``, each with its own infinite, resumable sampler
(independent shuffles from ``SEED`` and ``SEED + 1``, reshuffled on every pass, sharded per rank
under DDP; ``resumable_samplers`` lets the Trainer restart both streams at a resumed iteration).
Every step yields ``{"source": [dicts], "target": [dicts]}`` of ``SOLVER.IMS_PER_BATCH`` images
each (over all ranks), so Detectron2's SimpleTrainer/AMPTrainer run step is unchanged.
Target labels are replaced by -1: the model never sees them.
"""
from typing import List, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils import comm

from domaingen.data.classification_loaders import build_classification_train_loader
from domaingen.data.samplers import ResumableTrainingSampler


class PairedLoader:
    """Zips two infinite loaders into ``{"source": batch, "target": batch}`` steps."""

    def __init__(self, source, target, resumable_samplers=()):
        self.source = source
        self.target = target
        self.resumable_samplers = list(resumable_samplers)

    def __iter__(self):
        # Both loader iterators are created here, not at the first step (creating one draws from
        # torch's RNG, which the Trainer seeds per step).
        source, target = iter(self.source), iter(self.target)
        return ({"source": s, "target": t} for s, t in zip(source, target))


def _class_list(name: str) -> List[str]:
    return list(MetadataCatalog.get(name).get("thing_classes", None) or [])


def check_same_classes(source_names: Sequence[str], target_names: Sequence[str]) -> None:
    """Every source and target dataset must have the class list of the first source dataset."""
    if not source_names:
        raise ValueError("DATASETS.TRAIN is empty: the paired loader needs labelled source data")
    reference = source_names[0]
    expected = _class_list(reference)
    for key, names in (("DATASETS.TRAIN", source_names),
                       ("DATASETS.TRAIN_UNLABELED", target_names)):
        for name in names:
            classes = _class_list(name)
            if classes != expected:
                only_here = sorted(set(classes) - set(expected))
                missing = sorted(set(expected) - set(classes))
                detail = (f"classes only in {name!r}: {only_here[:5]}, missing from it: "
                          f"{missing[:5]}" if only_here or missing else "same classes, other order")
                raise ValueError(
                    f"{key} dataset {name!r} has {len(classes)} classes but DATASETS.TRAIN "
                    f"dataset {reference!r} has {len(expected)} ({detail}); domain adaptation "
                    f"needs the same class list, in the same order, in source and target")


def _dataset_dicts(names: Sequence[str], key: str) -> List[dict]:
    dicts = []
    for name in names:
        records = DatasetCatalog.get(name)
        if not records:
            raise ValueError(f"{key} dataset {name!r} has no images; check its files "
                             f"(datasets/README.md gives the expected layout)")
        dicts.extend(records)
    return dicts


def build_paired_train_loader(cfg) -> PairedLoader:
    """The paired loader of ``DATASETS.TRAIN`` (labelled) and ``DATASETS.TRAIN_UNLABELED``."""
    source_names, target_names = list(cfg.DATASETS.TRAIN), list(cfg.DATASETS.TRAIN_UNLABELED)
    check_same_classes(source_names, target_names)
    source = _dataset_dicts(source_names, "DATASETS.TRAIN")
    target = [{**d, "label": -1} for d in _dataset_dicts(target_names, "DATASETS.TRAIN_UNLABELED")]
    # The same seed on every rank: each rank takes its shard of one stream.
    seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
    samplers = [ResumableTrainingSampler(len(dicts), seed=seed + i)
                for i, dicts in enumerate((source, target))]
    loaders = [build_classification_train_loader(cfg, dicts, sampler)
               for sampler, dicts in zip(samplers, (source, target))]
    return PairedLoader(*loaders, resumable_samplers=samplers)
