"""The CLIP ModifiedResNet trunk (stem + layer1..3) as a Detectron2 backbone."""
from detectron2.config import configurable
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

from domaingen.clip import build_clip_from_cfg


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by a FrozenBatchNorm2d with the same statistics."""
    return FrozenBatchNorm2d.convert_frozen_batchnorm(module)


@BACKBONE_REGISTRY.register()
class ClipResNetBackbone(Backbone):
    """V_a of CLIP the Gap: CLIP ResNet stem + layer1..layer3, giving "res4" at stride 16.

    ``freeze_at`` follows Detectron2's ResNet: 0 trains everything, 1 freezes the stem,
    2 also layer1 ("res2"), 3 also layer2 ("res3"), 4 also layer3 ("res4").
    """

    @configurable
    def __init__(self, *, visual: nn.Module, freeze_at: int = 0, frozen_bn: bool = True):
        super().__init__()
        if not hasattr(visual, "layer3"):
            raise ValueError("ClipResNetBackbone needs a CLIP ModifiedResNet (RN50, RN101, ...); "
                             f"got {type(visual).__name__}")
        stages = [("stem", _Stem(visual)), ("res2", visual.layer1), ("res3", visual.layer2),
                  ("res4", visual.layer3)]
        self.stage_names = [name for name, _ in stages]
        for name, stage in stages:
            self.add_module(name, freeze_batchnorm(stage) if frozen_bn else stage)
        for name in self.stage_names[:freeze_at]:
            for p in getattr(self, name).parameters():
                p.requires_grad_(False)
        self._out_features = ["res4"]
        self._out_feature_strides = {"res4": 16}
        self._out_feature_channels = {"res4": visual.layer3[-1].conv3.out_channels}

    @classmethod
    def from_config(cls, cfg, input_shape=None):
        return {
            "visual": build_clip_from_cfg(cfg).visual,
            "freeze_at": cfg.MODEL.BACKBONE.FREEZE_AT,
            "frozen_bn": cfg.MODEL.CLIP.FROZEN_BN,
        }

    def forward(self, x):
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return {"res4": x}

    def output_shape(self):
        return {"res4": ShapeSpec(channels=self._out_feature_channels["res4"], stride=16)}


class _Stem(nn.Module):
    """CLIP's three-convolution stem with its 2x average pool (stride 4)."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        for name in ("conv1", "bn1", "act1", "conv2", "bn2", "act2", "conv3", "bn3", "act3",
                     "avgpool"):
            self.add_module(name, getattr(visual, name))

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x
