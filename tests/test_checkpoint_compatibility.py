"""Checkpoints written before the code moved into domaingen/methods/ keep loading: every model's
state-dict keys and shapes equal those recorded from the code before the move
(tests/data/checkpoint_keys_before_move.json, one entry per configs/quick/ config), and a
checkpoint with exactly those tensors loads strictly."""
import json
import os

import pytest
import torch
from detectron2.modeling import build_model

from domaingen.engine import AtomicCheckpointer, load_config

REPO = os.path.join(os.path.dirname(__file__), "..")
with open(os.path.join(os.path.dirname(__file__), "data", "checkpoint_keys_before_move.json")) as f:
    BEFORE = json.load(f)


def test_every_quick_config_was_recorded():
    quick = {n for n in os.listdir(os.path.join(REPO, "configs", "quick")) if n.endswith(".yaml")}
    assert quick == set(BEFORE)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_a_checkpoint_from_before_the_move_loads(name, tmp_path):
    model = build_model(load_config(os.path.join(REPO, "configs", "quick", name)))
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == BEFORE[name]
    old = {k: torch.ones(shape) for k, shape in BEFORE[name].items()}
    path = tmp_path / "old.pth"
    torch.save({"model": old, "iteration": 7}, path)
    AtomicCheckpointer(model, strict=True).load(str(path))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k].float(), old[k]) for k in old)
