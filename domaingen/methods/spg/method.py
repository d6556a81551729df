"""SPG as the engine sees it: a GAN run step over two independently shuffled streams."""
from domaingen.engine.registry import METHOD_REGISTRY, Method

from .config import add_spg_config
from .run_step import SPGTrainer


@METHOD_REGISTRY.register()
class SPGMethod(Method):
    """SPG stage II (stage I is a CoOp run per source domain: ``tools/spg_pipeline.py``)."""

    meta_architectures = ("SPGClassifier",)
    task = "classification"
    add_config = staticmethod(add_spg_config)
    # renytek13/Soft-Prompt-Generation: fp16 towers, the first image's prompt for the whole test
    # batch at their test batch of 1, evaluation noise from torch's global generator.
    authors_switches = {
        "MODEL.CLIP.PRECISION": "fp16",
        "MODEL.SPG.SHARE_FIRST_PROMPT": True,
        "MODEL.SPG.EVAL_NOISE_SEED": -1,
        "TEST.IMS_PER_BATCH": 1,
    }

    @classmethod
    def build_run_step(cls, cfg, model, build_train_loader):
        """Real and fake batches from two loaders with their own shuffles."""
        trainer = SPGTrainer.from_config(cfg, model, build_train_loader(cfg),
                                         build_train_loader(cfg, seed_offset=1))
        return trainer, trainer.optimizer
