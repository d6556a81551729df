"""Random square crops of source images, the input of CLIP the Gap's optimization step."""
import cv2
import numpy as np
import torch
from detectron2.data import DatasetCatalog, build_detection_train_loader
from detectron2.data import transforms as T

from .images import read_image


class RandomCropsMapper:
    """Dataset dict -> ``{"crops": uint8 [K, 3, S, S]}``: the image is resized to a short side
    of ``min_size`` and flipped at random, then K random ``crop_size`` squares are cut out and
    resized to ``output_size`` (authors: 600, 400, 224, K = 15)."""

    def __init__(self, min_size: int, crop_size: int, output_size: int, crops_per_image: int,
                 image_format: str = "BGR"):
        self.augmentations = T.AugmentationList(
            [T.ResizeShortestEdge(min_size, max_size=10 * min_size), T.RandomFlip()])
        self.crop_size = crop_size
        self.output_size = output_size
        self.crops_per_image = crops_per_image
        self.image_format = image_format

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
            crop = image[y:y + side, x:x + side]
            crops.append(cv2.resize(crop, (self.output_size, self.output_size),
                                    interpolation=cv2.INTER_CUBIC))
        crops = np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))
        return {"file_name": dataset_dict["file_name"], "crops": torch.from_numpy(crops)}


def build_crops_loader(cfg):
    """Infinite loader of crop batches from ``DATASETS.TRAIN`` (``OPT_IMS_PER_BATCH`` images in
    total across processes), for the optimization step."""
    c = cfg.MODEL.CLIP_GAP
    mapper = RandomCropsMapper(c.OPT_MIN_SIZE, c.OPT_CROP_SIZE, c.OPT_INPUT_SIZE,
                               c.OPT_CROPS_PER_IMAGE, cfg.INPUT.FORMAT)
    dataset = [d for name in cfg.DATASETS.TRAIN for d in DatasetCatalog.get(name)]
    return build_detection_train_loader(
        dataset=dataset, mapper=mapper, total_batch_size=c.OPT_IMS_PER_BATCH,
        aspect_ratio_grouping=False, num_workers=cfg.DATALOADER.NUM_WORKERS)
