"""Box predictor that scores ROI embeddings against CLIP text embeddings of the class names."""
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling.roi_heads import FastRCNNOutputLayers
from torch import nn


class TextEmbeddingClassifier(FastRCNNOutputLayers):
    """Fast R-CNN output layers whose classifier is CLIP's text side ("clip-t loss").

    Class logits are ``logit_scale * <normalise(f_r), Q_k>`` for the K classes, where f_r is the
    (optionally projected) attention-pooled ROI embedding and Q_k the normalised text embedding
    of class k, followed by one background logit: a constant 0 (the authors) or a learned bias.
    Box deltas are regressed from the spatial mean of the ROI feature map, as Detectron2's C4.
    The text embeddings are a buffer computed once when the model is built.
    """

    @configurable
    def __init__(self, input_shape, *, text_embeddings: torch.Tensor, logit_scale: float,
                 background: str = "zero", projection: bool = False, **kwargs):
        super().__init__(input_shape, **kwargs)
        if self.use_sigmoid_ce or self.use_fed_loss:
            raise ValueError("TextEmbeddingClassifier supports the softmax cross-entropy only")
        if text_embeddings.shape[0] != self.num_classes:
            raise ValueError(f"{text_embeddings.shape[0]} class text embeddings for "
                             f"MODEL.ROI_HEADS.NUM_CLASSES={self.num_classes}")
        del self.cls_score  # replaced by the text embeddings
        self.register_buffer("text_embeddings", F.normalize(text_embeddings.float(), dim=-1))
        self.logit_scale = float(logit_scale)
        if background not in ("zero", "learned"):
            raise ValueError(f"MODEL.TEXT_CLASSIFIER.BACKGROUND must be 'zero' or 'learned', "
                             f"got {background!r}")
        self.background_logit = nn.Parameter(torch.zeros(1)) if background == "learned" else None
        dim = text_embeddings.shape[1]
        self.projection = None
        if projection:
            self.projection = nn.Linear(dim, dim)
            nn.init.eye_(self.projection.weight)
            nn.init.zeros_(self.projection.bias)

    @classmethod
    def from_config(cls, cfg, input_shape, text_embeddings):
        ret = super().from_config(cfg, input_shape)
        ret.update(
            text_embeddings=text_embeddings,
            logit_scale=cfg.MODEL.TEXT_CLASSIFIER.LOGIT_SCALE,
            background=cfg.MODEL.TEXT_CLASSIFIER.BACKGROUND,
            projection=cfg.MODEL.TEXT_CLASSIFIER.PROJECTION,
        )
        return ret

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[N, D] ROI embeddings -> [N, K + 1] logits, background last (Detectron2's order)."""
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        embeddings = F.normalize(embeddings.float(), dim=-1)
        logits = self.logit_scale * embeddings @ self.text_embeddings.t()
        if self.background_logit is None:
            background = logits.new_zeros(logits.shape[0], 1)
        else:
            background = self.background_logit.expand(logits.shape[0], 1)
        return torch.cat([logits, background], dim=1)

    def forward(self, embeddings: torch.Tensor, box_features: torch.Tensor):
        """``embeddings`` [N, D] (attention pool), ``box_features`` [N, C, H, W] (res5 output)."""
        return self.class_logits(embeddings), self.bbox_pred(box_features.mean(dim=(2, 3)))
