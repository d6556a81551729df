"""Mappers: classification (dataset dict -> ``{"image": CHW uint8, "label", "domain"}``) and
detection (Detectron2's DatasetMapper, naming or skipping unreadable images).

Classification training images get a random resized crop and a
horizontal flip (as CoOp/Dassl and the AD-CLIP/SPG authors); test images are resized (short
side) and centre-cropped. CLIP normalisation happens in the model.
"""
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.utils.file_io import PathManager
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

logger = logging.getLogger(__name__)


class ImageDecodeError(RuntimeError):
    """An image file that cannot be read; the message names the file."""


def bad_image(file_name: str, error: Exception, skip: bool, skipped: int) -> int:
    """Raise ImageDecodeError for an unreadable image, or (``skip``) log it and return the new
    count of skipped images."""
    if not skip:
        raise ImageDecodeError(f"cannot read image {file_name}: {error}. Fix or remove it, or set "
                               f"DATALOADER.SKIP_BAD_IMAGES True to skip unreadable training "
                               f"images.") from error
    logger.warning(f"skipped unreadable image {file_name} ({error}); {skipped + 1} skipped so "
                   f"far in this worker")
    return skipped + 1


def read_rgb(file_name: str) -> torch.Tensor:
    """The image as an [H, W, 3] uint8 RGB tensor, EXIF orientation applied (as Detectron2's
    ``read_image``, without its copies)."""
    with PathManager.open(file_name, "rb") as f:
        image = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
    return torch.from_numpy(np.array(image))


class DetectionMapper(DatasetMapper):
    """Detectron2's DatasetMapper; an image that cannot be read raises ImageDecodeError naming
    the file, or with ``skip_bad_images`` (training only) is counted, logged and skipped
    (Detectron2's loader then draws another image)."""

    @configurable
    def __init__(self, is_train: bool = True, *, skip_bad_images: bool = False, **kwargs):
        super().__init__(is_train, **kwargs)
        self.skip_bad_images = skip_bad_images and is_train
        self.skipped = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {**super().from_config(cfg, is_train),
                "skip_bad_images": cfg.DATALOADER.SKIP_BAD_IMAGES}

    def __call__(self, dataset_dict: dict):
        try:
            return super().__call__(dataset_dict)
        except OSError as e:  # PIL: unidentified, truncated or missing image files
            self.skipped = bad_image(dataset_dict["file_name"], e, self.skip_bad_images,
                                     self.skipped)
            return None


class ClassificationMapper:
    """Maps ``{"file_name", "label", "domain", ...}`` to a fixed-size uint8 image tensor.

    With ``skip_bad_images`` (training only) an unreadable image is counted, logged and skipped
    (Detectron2's loader then draws another index); otherwise it raises naming the file.
    """

    def __init__(self, is_train: bool, size: int = 224, min_scale: float = 0.08,
                 image_format: str = "BGR", skip_bad_images: bool = False):
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
        self.skip_bad_images = skip_bad_images and is_train
        self.skipped = 0

    @classmethod
    def from_cfg(cls, cfg, is_train: bool) -> "ClassificationMapper":
        return cls(is_train, cfg.INPUT.CLS_SIZE, cfg.INPUT.CLS_MIN_SCALE, cfg.INPUT.FORMAT,
                   cfg.DATALOADER.SKIP_BAD_IMAGES)

    def __call__(self, dataset_dict: dict):
        try:
            image = read_rgb(dataset_dict["file_name"])
        except Exception as e:
            self.skipped = bad_image(dataset_dict["file_name"], e, self.skip_bad_images,
                                     self.skipped)
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
