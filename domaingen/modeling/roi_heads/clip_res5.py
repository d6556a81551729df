"""C4 ROI head made of CLIP's layer4 and attention pool."""
import logging

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import Res5ROIHeads
from torch import nn

from domaingen.clip import MeanTokenAttentionPool, build_clip_from_cfg, encode_prompts
from domaingen.data.metadata import class_names_from_cfg

from ..backbone import freeze_batchnorm
from .text_classifier import TextEmbeddingClassifier

logger = logging.getLogger(__name__)


def detector_class_names(cfg):
    """The training set's class names, checked against ``MODEL.ROI_HEADS.NUM_CLASSES``."""
    classes = class_names_from_cfg(cfg)
    if len(classes) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
        dataset = (list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST))[0]
        raise ValueError(f"MODEL.ROI_HEADS.NUM_CLASSES={cfg.MODEL.ROI_HEADS.NUM_CLASSES} but "
                         f"dataset {dataset!r} has {len(classes)} classes: {classes}")
    return classes


@ROI_HEADS_REGISTRY.register()
class ClipRes5ROIHeads(Res5ROIHeads):
    """V_b of CLIP the Gap: ROIAlign on res4, CLIP layer4, then two readers of its output:
    the attention pool (-> embedding for the text classifier) and the spatial mean (-> boxes).
    """

    @configurable
    def __init__(self, *, attnpool: nn.Module, **kwargs):
        super().__init__(**kwargs)
        self.attnpool = attnpool

    @classmethod
    def from_config(cls, cfg, input_shape):
        if cfg.MODEL.MASK_ON or cfg.MODEL.KEYPOINT_ON:
            raise ValueError("ClipRes5ROIHeads predicts boxes only "
                             "(MASK_ON/KEYPOINT_ON unsupported)")
        ret = super(Res5ROIHeads, cls).from_config(cfg)
        in_features = ret["in_features"] = cfg.MODEL.ROI_HEADS.IN_FEATURES
        ret["pooler"] = ROIPooler(
            output_size=cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION,
            scales=(1.0 / input_shape[in_features[0]].stride,),
            sampling_ratio=cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO,
            pooler_type=cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE,
        )
        clip_model = build_clip_from_cfg(cfg)
        visual = clip_model.visual
        grid = round((visual.attnpool.positional_embedding.shape[0] - 1) ** 0.5)
        if cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION != 2 * grid:
            raise ValueError(f"MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION must be {2 * grid} for "
                             f"{cfg.MODEL.CLIP.NAME}: layer4 halves it to the attention pool's "
                             f"{grid}x{grid} grid")
        layer4 = freeze_batchnorm(visual.layer4) if cfg.MODEL.CLIP.FROZEN_BN else visual.layer4
        classes = detector_class_names(cfg)
        text = encode_prompts(clip_model, cfg.MODEL.CLIP.NAME, classes,
                              cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES)
        logger.info(f"Text classifier: {len(classes)} classes {classes}, "
                    f"templates {list(cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES)}")
        ret["res5"] = layer4
        ret["attnpool"] = MeanTokenAttentionPool.from_pool(visual.attnpool)
        out_channels = layer4[-1].conv3.out_channels
        ret["box_predictor"] = TextEmbeddingClassifier(
            cfg, ShapeSpec(channels=out_channels, height=1, width=1), text_embeddings=text)
        return ret

    def embed(self, res4_regions):
        """CLIP's V_b on res4 maps: ``(embedding [N, D], layer4 map [N, C, h, w])``."""
        box_features = self.res5(res4_regions)
        return self.attnpool(box_features), box_features

    def forward(self, images, features, proposals, targets=None):
        del images
        if self.training:
            assert targets, "ClipRes5ROIHeads needs targets in training"
            proposals = self.label_and_sample_proposals(proposals, targets)
        del targets
        regions = self.pooler([features[f] for f in self.in_features],
                              [x.proposal_boxes for x in proposals])
        predictions = self.box_predictor(*self.embed(regions))
        if self.training:
            return [], self.box_predictor.losses(predictions, proposals)
        instances, _ = self.box_predictor.inference(predictions, proposals)
        return instances, {}
