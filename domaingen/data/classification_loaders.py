"""Classification train and test loaders: Detectron2's loaders with the ClassificationMapper and
a collate function that stacks the batch's images in the loader worker.

A batch stays Detectron2's list of dicts, but its images are views of one tensor, so a worker
passes one shared-memory block per batch to the trainer instead of one per image (16 images of
224 px: 6.9 ms -> 2.2 ms to receive a batch on 2 cores).
"""
from typing import List

import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader

from .mappers import ClassificationMapper


def collate_stacked_images(batch: List[dict]) -> List[dict]:
    """The batch's dicts, their ``"image"`` replaced by views of one stacked tensor."""
    images = torch.stack([d["image"] for d in batch])
    return [dict(d, image=image) for d, image in zip(batch, images)]


def build_classification_train_loader(cfg, dataset: List[dict], sampler):
    """Infinite loader of ``SOLVER.IMS_PER_BATCH`` (over all processes) augmented images of
    ``dataset``, in the order of ``sampler``."""
    mapper = ClassificationMapper.from_cfg(cfg, is_train=True)
    mapper.bad_images.num_images = len(dataset)
    return build_detection_train_loader(
        dataset=dataset, mapper=mapper,
        sampler=sampler, total_batch_size=cfg.SOLVER.IMS_PER_BATCH, aspect_ratio_grouping=False,
        num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=collate_stacked_images)


def build_classification_test_loader(cfg, dataset: List[dict]):
    """One pass over ``dataset`` (sharded over processes) in batches of ``TEST.IMS_PER_BATCH``."""
    return build_detection_test_loader(
        dataset=dataset, mapper=ClassificationMapper.from_cfg(cfg, is_train=False),
        batch_size=cfg.TEST.IMS_PER_BATCH, num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=collate_stacked_images)
