"""Random square crops of source images, the input of CLIP the Gap's optimization step."""
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import build_detection_train_loader
from detectron2.data import transforms as T

from domaingen.data.detection_sets import detection_training_dicts
from domaingen.data.images import read_image

CROP_INTERPOLATIONS = ("bilinear", "cubic")


def resize_crops(crops: np.ndarray, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Square uint8 crops [K, S, S, C] -> uint8 [K, C, size, size].

    "bilinear" is torchvision's tensor resize, which the CLIP-the-Gap authors call on their
    crops: bilinear, no antialiasing, half-pixel centres, rounded back to uint8. "cubic" is
    OpenCV's INTER_CUBIC.
    """
    if interpolation == "bilinear":
        images = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        resized = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                antialias=False)
        return resized.round_().to(torch.uint8)
    if interpolation == "cubic":
        resized = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC)
                            for c in crops])
        return torch.from_numpy(np.ascontiguousarray(resized.transpose(0, 3, 1, 2)))
    raise ValueError(f"MODEL.CLIP_GAP.OPT_CROP_INTERPOLATION must be one of "
                     f"{CROP_INTERPOLATIONS}, got {interpolation!r}")


class RandomCropsMapper:
    """Dataset dict -> ``{"crops": uint8 [K, 3, S, S]}``: the image is resized to a short side
    of ``min_size`` (long side at most ``max_size``) and flipped at random, then K random
    ``crop_size`` squares are cut out and resized to ``output_size`` with ``interpolation``
    (authors: 600, 1333, 400, 224, K = 15, bilinear)."""

    def __init__(self, min_size: int, crop_size: int, output_size: int, crops_per_image: int,
                 image_format: str = "BGR", max_size: int = 1333,
                 interpolation: str = "bilinear"):
        if interpolation not in CROP_INTERPOLATIONS:
            raise ValueError(f"MODEL.CLIP_GAP.OPT_CROP_INTERPOLATION must be one of "
                             f"{CROP_INTERPOLATIONS}, got {interpolation!r}")
        self.augmentations = T.AugmentationList(
            [T.ResizeShortestEdge(min_size, max_size=max_size), T.RandomFlip()])
        self.crop_size = crop_size
        self.output_size = output_size
        self.crops_per_image = crops_per_image
        self.image_format = image_format
        self.interpolation = interpolation

    def __call__(self, dataset_dict: dict) -> dict:
        image = read_image(dataset_dict["file_name"], self.image_format)
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        image = aug_input.image
        height, width = image.shape[:2]
        side = min(self.crop_size, height, width)
        crops = []
        for _ in range(self.crops_per_image):
            y = np.random.randint(0, height - side + 1)
            x = np.random.randint(0, width - side + 1)
            crops.append(image[y:y + side, x:x + side])
        crops = resize_crops(np.stack(crops), self.output_size, self.interpolation)
        return {"file_name": dataset_dict["file_name"], "crops": crops}


def build_crops_loader(cfg):
    """Infinite loader of crop batches from ``DATASETS.TRAIN`` (``OPT_IMS_PER_BATCH`` images in
    total across processes), for the optimization step: the detector's training images, so with
    ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` (the default) without those holding no object, as
    the authors' crops come from their detector loader."""
    c = cfg.MODEL.CLIP_GAP
    mapper = RandomCropsMapper(c.OPT_MIN_SIZE, c.OPT_CROP_SIZE, c.OPT_INPUT_SIZE,
                               c.OPT_CROPS_PER_IMAGE, cfg.INPUT.FORMAT,
                               max_size=cfg.INPUT.MAX_SIZE_TRAIN,
                               interpolation=c.OPT_CROP_INTERPOLATION)
    dataset = detection_training_dicts(cfg)
    return build_detection_train_loader(
        dataset=dataset, mapper=mapper, total_batch_size=c.OPT_IMS_PER_BATCH,
        aspect_ratio_grouping=False, num_workers=cfg.DATALOADER.NUM_WORKERS)
