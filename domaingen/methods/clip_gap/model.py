"""CLIP the Gap: the CLIP detector trained with semantic augmentations of its res4 features."""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils.events import get_event_storage

from domaingen.clip import build_clip_from_cfg, one_clip_per_model
from domaingen.modeling.meta_arch import ClipRCNN

from .offset_bank import SemanticAugmentationBank, build_augmentation_bank


@META_ARCH_REGISTRY.register()
class ClipGapRCNN(ClipRCNN):
    """ClipRCNN whose training batches, with probability ``aug_prob``, get one random bank entry
    per image (the spatial mean of A_j, a C-vector) added to their res4 features before the RPN
    and ROI heads. Inference is never augmented."""

    @configurable
    def __init__(self, *, augmentation_bank: SemanticAugmentationBank, aug_prob: float,
                 aug_when_rand_above_prob: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= aug_prob <= 1.0:
            raise ValueError(f"MODEL.CLIP_GAP.AUG_PROB must be in [0, 1], got {aug_prob}")
        self.augmentation_bank = augmentation_bank
        self.aug_prob = aug_prob
        self.aug_when_rand_above_prob = aug_when_rand_above_prob

    @classmethod
    def from_config(cls, cfg):
        with one_clip_per_model():  # the bank's text directions from the detector's CLIP
            ret = super().from_config(cfg)
            channels = ret["backbone"].output_shape()["res4"].channels
            bank = build_augmentation_bank(cfg, build_clip_from_cfg(cfg), channels,
                                           cfg.MODEL.CLIP_GAP.AUG_WEIGHTS)
        ret.update(
            augmentation_bank=bank,
            aug_prob=cfg.MODEL.CLIP_GAP.AUG_PROB,
            aug_when_rand_above_prob=cfg.MODEL.CLIP_GAP.AUG_WHEN_RAND_ABOVE_PROB,
        )
        return ret

    def should_augment(self) -> bool:
        """One draw per batch; the authors' code augments when the draw exceeds AUG_PROB."""
        draw = float(torch.rand(()))
        return draw > self.aug_prob if self.aug_when_rand_above_prob else draw < self.aug_prob

    def augment(self, res4: torch.Tensor) -> torch.Tensor:
        """Add a random entry's channel offsets to each image's res4 map; log the first image's
        entry and the mean ratio ||offset|| / ||res4 channel mean|| (``clip_gap/*``)."""
        indices = torch.randint(len(self.augmentation_bank), (res4.shape[0],))
        offsets = self.augmentation_bank.channel_offsets(indices.to(res4.device))
        with torch.no_grad():
            ratio = offsets.norm(dim=1) / res4.mean(dim=(2, 3)).norm(dim=1).clamp_min(1e-12)
        _log_scalars(bank_index=float(indices[0]), offset_ratio=float(ratio.mean()))
        return res4 + offsets[:, :, None, None].to(res4.dtype)

    def forward(self, batched_inputs):
        if not self.training:
            return super().forward(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features = self.backbone(images.tensor)
        augmented = self.should_augment()
        _log_scalars(augmented=float(augmented))
        if augmented:
            features = {**features, "res4": self.augment(features["res4"])}
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        if self.vis_period > 0 and get_event_storage().iter % self.vis_period == 0:
            self.visualize_training(batched_inputs, proposals)
        return {**detector_losses, **proposal_losses}


def _log_scalars(**values: float) -> None:
    """``clip_gap/<name>`` into the training's event storage (metrics.json, TensorBoard); no-op
    outside a trainer."""
    try:
        storage = get_event_storage()
    except AssertionError:
        return
    for name, value in values.items():
        storage.put_scalar(f"clip_gap/{name}", value, smoothing_hint=False)
