"""The method registry: a method defined in this file only (a linear probe on CLIP image
features, with its own config key and hook) trains and evaluates through tools/train_net.py's
code path without a change to any package file; the engine names no method."""
import os
import re

import torch
from detectron2.config import CfgNode as CN
from detectron2.config import configurable
from detectron2.engine import HookBase, default_argument_parser
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from domaingen.engine import METHOD_REGISTRY, Method, load_config, method_of
from domaingen.engine.cli import main
from domaingen.engine.registry import registered_methods
from domaingen.modeling import ClipImageClassifier

REPO = os.path.join(os.path.dirname(__file__), "..")
COOP = os.path.join(REPO, "configs", "quick", "synthetic_domains_coop.yaml")


def add_probe_config(cfg):
    cfg.MODEL.PROBE = CN()
    cfg.MODEL.PROBE.BIAS = True  # the probe's linear layer has a bias


@META_ARCH_REGISTRY.register()
class LinearProbeClassifier(ClipImageClassifier):
    """A linear layer on the frozen CLIP image embedding."""

    @configurable
    def __init__(self, *, bias: bool, **kwargs):
        super().__init__(**kwargs)
        self.head = nn.Linear(self.visual.output_dim, len(self.class_names), bias=bias)

    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "bias": cfg.MODEL.PROBE.BIAS}

    def class_logits(self, image_features):
        return self.head(image_features)


class CountSteps(HookBase):
    def __init__(self):
        self.steps = 0

    def after_step(self):
        self.steps += 1


@METHOD_REGISTRY.register()
class LinearProbeMethod(Method):
    meta_architectures = ("LinearProbeClassifier",)
    task = "classification"
    add_config = staticmethod(add_probe_config)
    built_hooks = []

    @classmethod
    def hooks(cls, cfg):
        cls.built_hooks.append(CountSteps())
        return cls.built_hooks[-1:]


def train_net(*argv):
    return main(default_argument_parser().parse_args(list(argv)))


def test_a_method_defined_outside_the_package_trains_and_evaluates(synthetic_domains, tmp_path):
    opts = ["MODEL.META_ARCHITECTURE", "LinearProbeClassifier", "MODEL.PROBE.BIAS", "False"]
    assert method_of(load_config(COOP, opts)) is LinearProbeMethod
    results = train_net("--config-file", COOP, *opts, "SOLVER.MAX_ITER", "6",
                        "SOLVER.CHECKPOINT_PERIOD", "6", "OUTPUT_DIR", str(tmp_path / "train"))
    assert LinearProbeMethod.built_hooks[-1].steps == 6
    assert set(results) == {"synthetic_domains_sketch_test"}
    weights = tmp_path / "train" / "model_final.pth"
    state = torch.load(weights, weights_only=True)["model"]
    assert set(state) == {"head.weight"}  # its own key reached the model: no bias
    assert os.path.isfile(tmp_path / "train" / "log.txt")
    evaluated = train_net("--config-file", COOP, "--eval-only", *opts, "MODEL.WEIGHTS",
                          str(weights), "OUTPUT_DIR", str(tmp_path / "eval"))
    assert evaluated == results


def test_a_plain_detectron2_architecture_gets_the_default_method():
    cfg = load_config(COOP, ["MODEL.META_ARCHITECTURE", "GeneralizedRCNN"])
    assert method_of(cfg) is Method
    assert (Method.task, Method.trains, Method.hooks(cfg), Method.first_iteration(cfg)) == \
        ("detection", True, [], 0)


def test_the_engine_names_no_method():
    names = {n for m in registered_methods() for n in m.meta_architectures}
    pattern = re.compile("|".join([*sorted(names), r"MODEL\.(?:CLIP_GAP|SPG|ADCLIP|PROBE)\b",
                                   r"domaingen\.methods"]))
    engine = os.path.join(REPO, "domaingen", "engine")
    found = {}
    for name in sorted(os.listdir(engine)):
        if name.endswith(".py"):
            with open(os.path.join(engine, name), encoding="utf-8") as f:
                hits = sorted(set(pattern.findall(f.read())))
            if hits:
                found[name] = hits
    assert not found
