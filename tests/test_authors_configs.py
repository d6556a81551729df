"""Every *_authors.yaml sets all switches of its method to the authors' side; the config beside
it keeps ours; the README's differences list names every switch."""
import glob
import os

import pytest

from domaingen.config.authors import AUTHORS_SWITCHES, METHOD_OF_META_ARCH, authors_switches
from domaingen.engine import load_config

REPO = os.path.join(os.path.dirname(__file__), "..")
AUTHORS_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*_authors.yaml"),
                                   recursive=True))


def value(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("path", AUTHORS_CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_authors_config_sets_every_switch_and_ours_none(path):
    cfg = load_config(path)
    switches = authors_switches(cfg.MODEL.META_ARCHITECTURE)
    assert switches, f"{path}: no switches registered for {cfg.MODEL.META_ARCHITECTURE}"
    wrong = {k: value(cfg, k) for k, v in switches.items() if value(cfg, k) != v}
    assert not wrong, f"{path} leaves these switches on our side: {wrong}"
    ours = load_config(path.replace("_authors.yaml", ".yaml"))
    assert ours.MODEL.META_ARCHITECTURE == cfg.MODEL.META_ARCHITECTURE
    copied = {k: v for k, v in switches.items() if value(ours, k) == v}
    assert not copied, f"{path}'s sibling already has the authors' side of {copied}"


def test_every_method_with_switches_has_an_authors_config():
    methods = {METHOD_OF_META_ARCH[load_config(p).MODEL.META_ARCHITECTURE] for p in AUTHORS_CONFIGS}
    assert {m for m, s in AUTHORS_SWITCHES.items() if s} <= methods


def test_readme_differences_name_every_switch():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("## Differences from the authors' code")
    section = readme[start:readme.index("\n## ", start + 1)]
    keys = {k for switches in AUTHORS_SWITCHES.values() for k in switches}
    unnamed = sorted(k for k in keys if f"`{k} " not in section)
    assert not unnamed, f"README 'Differences from the authors' code' does not name {unnamed}"
