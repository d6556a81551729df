"""AD-CLIP as the engine sees it: a paired source/target loader and the authors' schedule."""
from domaingen.engine.registry import METHOD_REGISTRY, Method

from .config import add_adclip_config
from .paired_loader import build_paired_train_loader
from .schedule import build_authors_adclip_lr_scheduler


@METHOD_REGISTRY.register()
class ADCLIPMethod(Method):
    meta_architectures = ("ADCLIPClassifier",)
    task = "classification"
    add_config = staticmethod(add_adclip_config)
    dataset_keys = ("TRAIN_UNLABELED",)
    # mainaksingha01/AD-CLIP's entropy, per-iteration LR schedule and untrained RN50 layers.
    authors_switches = {
        "MODEL.ADCLIP.AUTHORS_ENTROPY": True,
        "MODEL.ADCLIP.AUTHORS_LR_SCHEDULE": True,
        "MODEL.ADCLIP.AUTHORS_UNTRAINED_FIRST_LAYERS": True,
    }

    @classmethod
    def build_train_loader(cls, cfg):
        """Labelled source and unlabelled target batches (``DATASETS.TRAIN_UNLABELED``)."""
        return build_paired_train_loader(cfg) if cfg.DATASETS.TRAIN_UNLABELED else None

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        if cfg.MODEL.ADCLIP.AUTHORS_LR_SCHEDULE:
            return build_authors_adclip_lr_scheduler(cfg, optimizer)
        return None
