"""The CLIP detector and CLIP the Gap, as the engine sees them."""
from domaingen.engine.registry import METHOD_REGISTRY, Method

from .config import add_clip_gap_config
from .optimize import SemanticAugmentationHook

# vidit09/domaingen's detector: CLIP's BatchNorm in train mode, Detectron2's VOC box arithmetic,
# the default memory layout (channels-last fp32 train-mode BatchNorm on the CPU computes res4 to
# ~1e-4 relative, 10-100x further from theirs than the default layout).
DETECTOR_AUTHORS_SWITCHES = {
    "MODEL.CLIP.FROZEN_BN": False,
    "TEST.AP_BOX_CONVENTION": "detectron2_voc",
    "MODEL.CHANNELS_LAST": False,
}


@METHOD_REGISTRY.register()
class ClipRCNNMethod(Method):
    """The baseline: a C4 Faster R-CNN cut from a CLIP ResNet with a text-embedding box
    classifier (CLIP the Gap without semantic augmentations)."""

    meta_architectures = ("ClipRCNN",)
    authors_switches = DETECTOR_AUTHORS_SWITCHES


@METHOD_REGISTRY.register()
class ClipGapMethod(Method):
    """CLIP the Gap: the optimization step (a hook before training), then the detector trained
    with semantic augmentations."""

    meta_architectures = ("ClipGapRCNN",)
    add_config = staticmethod(add_clip_gap_config)
    authors_switches = {
        **DETECTOR_AUTHORS_SWITCHES,
        "MODEL.CLIP_GAP.AUG_WHEN_RAND_ABOVE_PROB": True,
        "MODEL.CLIP_GAP.OPT_LOSS_OVER_M_PLUS_1": True,
        "MODEL.CLIP_GAP.OPT_CLEAN_PASS_PER_PROMPT": True,
        "MODEL.CLIP_GAP.OPT_ITERS_IN_SCHEDULE": True,
    }

    @classmethod
    def hooks(cls, cfg):
        return [SemanticAugmentationHook()]

    @classmethod
    def first_iteration(cls, cfg) -> int:
        """With ``OPT_ITERS_IN_SCHEDULE`` (the authors' schedule) the optimization step used up
        the first OPT_ITERS iterations: the detector starts at iteration OPT_ITERS."""
        c = cfg.MODEL.CLIP_GAP
        if not c.OPT_ITERS_IN_SCHEDULE:
            return 0
        if c.OPT_ITERS >= cfg.SOLVER.MAX_ITER:
            raise ValueError(f"MODEL.CLIP_GAP.OPT_ITERS_IN_SCHEDULE: OPT_ITERS={c.OPT_ITERS} "
                             f"leaves no detector iteration of SOLVER.MAX_ITER="
                             f"{cfg.SOLVER.MAX_ITER}")
        return c.OPT_ITERS
