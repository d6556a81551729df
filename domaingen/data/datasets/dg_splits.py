"""Registered dataset names of the domain generalization protocols (leave-one-domain-out, single source)."""
from typing import Dict, List

from .classification import CLASSIFICATION_DATASETS

__all__ = ["DG_DATASETS", "DG_PROTOCOLS", "dg_split_names"]

# dataset -> domains, for every dataset with train, val and test splits in all its domains
DG_DATASETS: Dict[str, tuple] = {
    dataset: tuple(domains)
    for dataset, domains in CLASSIFICATION_DATASETS.items()
    if all({"train", "val", "test"} <= set(splits) for splits in domains.values())
}
DG_PROTOCOLS = ("multi_source", "single_source")


def dg_split_names(
    dataset: str, target: str, protocol: str = "multi_source", prefix: str = ""
) -> Dict[str, List[str]]:
    """Names of the ``train``, ``val`` and ``test`` datasets of one domain generalization task.

    ``multi_source`` (leave-one-domain-out): train/val are the train/val splits of every domain
    but ``target``, test is the test split (the whole domain) of ``target``.
    ``single_source``: ``target`` names the source domain; train/val are its train/val splits and
    test is the test split of every other domain. Domains keep the order of ``DG_DATASETS``;
    ``prefix`` is the one given to ``register_all_classification``.
    """
    if dataset not in DG_DATASETS:
        raise ValueError(f"Unknown DG dataset {dataset!r}; valid: {', '.join(DG_DATASETS)}")
    domains = DG_DATASETS[dataset]
    if target not in domains:
        raise ValueError(f"Unknown {dataset} domain {target!r}; valid: {', '.join(domains)}")
    if protocol not in DG_PROTOCOLS:
        raise ValueError(f"Unknown DG protocol {protocol!r}; valid: {', '.join(DG_PROTOCOLS)}")
    others = [d for d in domains if d != target]
    sources, targets = (others, [target]) if protocol == "multi_source" else ([target], others)
    return {
        "train": [f"{prefix}{dataset}_{d}_train" for d in sources],
        "val": [f"{prefix}{dataset}_{d}_val" for d in sources],
        "test": [f"{prefix}{dataset}_{d}_test" for d in targets],
    }
