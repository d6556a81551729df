"""Faster R-CNN (C4) built from a CLIP ResNet."""
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import ImageList


@META_ARCH_REGISTRY.register()
class ClipRCNN(GeneralizedRCNN):
    """GeneralizedRCNN fed the way CLIP was trained: RGB, normalised with CLIP's mean/std.

    Detectron2 hands images in ``INPUT.FORMAT`` (BGR by default); they are flipped to RGB before
    normalising with ``MODEL.PIXEL_MEAN``/``PIXEL_STD``, which the base config sets to CLIP's
    statistics (RGB order, 0-255 scale).
    """

    def preprocess_image(self, batched_inputs):
        images = [self._move_to_current_device(x["image"]) for x in batched_inputs]
        if self.input_format == "BGR":
            images = [x.flip(0) for x in images]
        images = [(x - self.pixel_mean) / self.pixel_std for x in images]
        return ImageList.from_tensors(
            images,
            self.backbone.size_divisibility,
            padding_constraints=self.backbone.padding_constraints,
        )
