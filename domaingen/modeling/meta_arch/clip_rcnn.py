"""Faster R-CNN (C4) built from a CLIP ResNet."""
import torch
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import ImageList

from domaingen.clip import one_clip_per_model


@META_ARCH_REGISTRY.register()
class ClipRCNN(GeneralizedRCNN):
    """GeneralizedRCNN fed the way CLIP was trained: RGB, normalised with CLIP's mean/std.

    Detectron2 hands images in ``INPUT.FORMAT`` (BGR by default); they are flipped to RGB before
    normalising with ``MODEL.PIXEL_MEAN``/``PIXEL_STD``, which the base config sets to CLIP's
    statistics (RGB order, 0-255 scale). The backbone and the ROI head are cut from one CLIP.
    """

    @classmethod
    def from_config(cls, cfg):
        with one_clip_per_model():
            return super().from_config(cfg)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images [..., 3, H, W] in ``INPUT.FORMAT`` (0-255) -> CLIP-normalised RGB."""
        images = self._move_to_current_device(images)
        if self.input_format == "BGR":
            images = images.flip(-3)
        return (images - self.pixel_mean) / self.pixel_std

    def preprocess_image(self, batched_inputs):
        images = [self.normalize(x["image"]) for x in batched_inputs]
        return ImageList.from_tensors(
            images,
            self.backbone.size_divisibility,
            padding_constraints=self.backbone.padding_constraints,
        )
