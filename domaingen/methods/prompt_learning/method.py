"""ZS-CLIP, CoOp and CoCoOp, as the engine sees them."""
from domaingen.engine.registry import METHOD_REGISTRY, Method

# renytek13/Soft-Prompt-Generation runs these baselines with fp16 CLIP towers (Dassl's PREC).
FP16_TOWERS = {"MODEL.CLIP.PRECISION": "fp16"}


@METHOD_REGISTRY.register()
class ZeroShotCLIPMethod(Method):
    """CLIP with hand-written prompts: nothing trains, running it evaluates it."""

    meta_architectures = ("ZeroShotCLIPClassifier",)
    task = "classification"
    trains = False
    authors_switches = FP16_TOWERS


@METHOD_REGISTRY.register()
class CoOpMethod(Method):
    meta_architectures = ("CoOpClassifier",)
    task = "classification"
    authors_switches = FP16_TOWERS


@METHOD_REGISTRY.register()
class CoCoOpMethod(Method):
    meta_architectures = ("CoCoOpClassifier",)
    task = "classification"
    authors_switches = FP16_TOWERS
