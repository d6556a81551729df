"""REPRODUCE_AUTHORS: one key sets every authors' switch of the config's method (declared with
the method), for every shipped config; the configs themselves stay on our side; the command line
still wins; each method's docs page names every switch."""
import glob
import os

import pytest
from detectron2.config import get_cfg

from domaingen.config import add_domaingen_config
from domaingen.engine import load_config, method_of
from domaingen.engine.registry import registered_methods

REPO = os.path.join(os.path.dirname(__file__), "..")
CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
                 if not os.path.basename(p).startswith("Base-"))
# Registered method -> its docs page.
DOCS = {
    "ClipRCNNMethod": "clip_gap.md", "ClipGapMethod": "clip_gap.md",
    "ZeroShotCLIPMethod": "prompt_learning.md", "CoOpMethod": "prompt_learning.md",
    "CoCoOpMethod": "prompt_learning.md", "SPGMethod": "spg.md", "ADCLIPMethod": "adclip.md",
}


def value(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def test_every_paper_method_declares_switches():
    switches = {m.__name__: m.authors_switches for m in registered_methods()}
    assert all(switches[name] for name in DOCS), switches


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_the_key_sets_every_switch_and_the_config_none(path):
    ours = load_config(path)
    switches = method_of(ours).authors_switches
    # A key whose default already is the authors' value (a speed option a config turns on) may
    # stay there; every other switch must be on our side in the config.
    defaults = add_domaingen_config(get_cfg())
    copied = {k: v for k, v in switches.items() if value(ours, k) == v != value(defaults, k)}
    # The random-init configs (quick/, evidence/) train BatchNorm: nothing to freeze.
    if os.path.basename(os.path.dirname(path)) in ("quick", "evidence"):
        copied.pop("MODEL.CLIP.FROZEN_BN", None)
    assert not copied, f"{path} already sets the authors' side of {copied}"
    theirs = load_config(path, ["REPRODUCE_AUTHORS", "True"])
    assert {k: value(theirs, k) for k in switches} == switches


def test_the_authors_mode_turns_off_channels_last():
    path = os.path.join(REPO, "configs", "diverse_weather", "clip_rcnn_RN101.yaml")
    assert load_config(path).MODEL.CHANNELS_LAST is True  # ours: 13 % faster on the CPU
    assert load_config(path, ["REPRODUCE_AUTHORS", "True"]).MODEL.CHANNELS_LAST is False


def test_the_command_line_still_wins():
    path = os.path.join(REPO, "configs", "diverse_weather", "clip_gap_RN101.yaml")
    cfg = load_config(path, ["REPRODUCE_AUTHORS", "True", "MODEL.CLIP.FROZEN_BN", "True"])
    assert cfg.MODEL.CLIP.FROZEN_BN is True
    assert cfg.MODEL.CLIP_GAP.OPT_LOSS_OVER_M_PLUS_1 is True


def test_a_config_file_may_ask_for_the_authors_mode(tmp_path):
    config = tmp_path / "theirs.yaml"
    base = os.path.abspath(os.path.join(REPO, "configs", "classification", "pacs",
                                        "spg_ViT-B-16.yaml"))
    config.write_text(f'_BASE_: "{base}"\nREPRODUCE_AUTHORS: True\n')
    cfg = load_config(str(config))
    assert (cfg.MODEL.CLIP.PRECISION, cfg.MODEL.SPG.SHARE_FIRST_PROMPT,
            cfg.MODEL.SPG.EVAL_NOISE_SEED, cfg.TEST.IMS_PER_BATCH) == ("fp16", True, -1, 1)


@pytest.mark.parametrize("method", sorted(DOCS))
def test_the_docs_page_names_every_switch(method):
    switches = next(m for m in registered_methods() if m.__name__ == method).authors_switches
    with open(os.path.join(REPO, "docs", "methods", DOCS[method]), encoding="utf-8") as f:
        page = f.read()
    section = page[page.index("## Differences from the authors' code"):]
    unnamed = sorted(k for k in switches if f"`{k}`" not in section)
    assert not unnamed, f"docs/methods/{DOCS[method]} does not name {unnamed}"
