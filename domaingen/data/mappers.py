"""Mappers: classification (dataset dict -> ``{"image": CHW uint8, "label", "domain"}``) and
detection (Detectron2's DatasetMapper on domaingen's image reader), both naming or skipping
unreadable images (``domaingen.data.images``).

Classification training images get a random resized crop and a
horizontal flip (as CoOp/Dassl and the AD-CLIP/SPG authors); test images are resized (short
side) and centre-cropped. CLIP normalisation happens in the model.
"""
import copy
from typing import Optional

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as DT
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from .images import BadImages, ImageDecodeError, read_image, read_rgb

__all__ = ["ClassificationMapper", "DetectionMapper", "ImageDecodeError"]


class DetectionMapper(DatasetMapper):
    """Detectron2's DatasetMapper (boxes only: no semantic segmentation) reading images with
    :func:`read_image`, for training and evaluation alike. An unreadable image raises
    ImageDecodeError naming the file, or with ``skip_bad_images`` (training only) is logged and
    skipped (Detectron2's loader then draws another image); ``num_images`` (the dataset's size)
    turns skipping every image into an error."""

    @configurable
    def __init__(self, is_train: bool = True, *, skip_bad_images: bool = False,
                 num_images: Optional[int] = None, **kwargs):
        super().__init__(is_train, **kwargs)
        self.bad_images = BadImages(skip_bad_images and is_train, num_images)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {**super().from_config(cfg, is_train),
                "skip_bad_images": cfg.DATALOADER.SKIP_BAD_IMAGES}

    def __call__(self, dataset_dict: dict):
        dataset_dict = copy.deepcopy(dataset_dict)
        try:
            image = read_image(dataset_dict["file_name"], self.image_format)
        except ImageDecodeError as e:
            self.bad_images(e, dataset_dict["file_name"])
            return None
        utils.check_image_size(dataset_dict, image)
        aug_input = DT.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.proposal_topk is not None:
            utils.transform_proposals(dataset_dict, image_shape, transforms,
                                      proposal_topk=self.proposal_topk)
        if not self.is_train:
            dataset_dict.pop("annotations", None)
        elif "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
        return dataset_dict


class ClassificationMapper:
    """Maps ``{"file_name", "label", "domain", ...}`` to a fixed-size uint8 image tensor.

    With ``skip_bad_images`` (training only) an unreadable image is logged and skipped
    (Detectron2's loader then draws another index); otherwise it raises naming the file.
    ``num_images`` (``bad_images.num_images``: the dataset's size) turns skipping every image
    into an error.
    """

    def __init__(self, is_train: bool, size: int = 224, min_scale: float = 0.08,
                 image_format: str = "BGR", skip_bad_images: bool = False,
                 num_images: Optional[int] = None):
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be 'RGB' or 'BGR' for CLIP classifiers, got "
                             f"{image_format!r}")
        bicubic = InterpolationMode.BICUBIC
        if is_train:
            self.transform = T.Compose([
                T.RandomResizedCrop(size, scale=(min_scale, 1.0), interpolation=bicubic,
                                    antialias=True),
                T.RandomHorizontalFlip()])
        else:
            self.transform = T.Compose([T.Resize(size, interpolation=bicubic, antialias=True),
                                        T.CenterCrop(size)])
        self.image_format = image_format
        self.bad_images = BadImages(skip_bad_images and is_train, num_images)

    @classmethod
    def from_cfg(cls, cfg, is_train: bool) -> "ClassificationMapper":
        return cls(is_train, cfg.INPUT.CLS_SIZE, cfg.INPUT.CLS_MIN_SCALE, cfg.INPUT.FORMAT,
                   cfg.DATALOADER.SKIP_BAD_IMAGES)

    def __call__(self, dataset_dict: dict):
        try:
            image = read_rgb(dataset_dict["file_name"])
        except ImageDecodeError as e:
            self.bad_images(e, dataset_dict["file_name"])
            return None
        # Crop and resize the channels-last view (no copy of the full image); then the channel
        # order of INPUT.FORMAT and a contiguous [3, size, size] tensor.
        image = self.transform(image.permute(2, 0, 1))
        if self.image_format == "BGR":
            image = image.flip(0)
        return {
            "image": image.contiguous(),
            "label": dataset_dict["label"],
            "domain": dataset_dict.get("domain", ""),
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict.get("image_id", dataset_dict["file_name"]),
        }
