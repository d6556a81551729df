"""Backbones registered in Detectron2's BACKBONE_REGISTRY."""
from .clip_resnet import ClipResNetBackbone, freeze_batchnorm

__all__ = ["ClipResNetBackbone", "freeze_batchnorm"]
