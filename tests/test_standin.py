"""The pretraining world and the semantic stand-in CLIPs (``MODEL.CLIP.WEIGHTS standin``)."""
import json
import logging
import os
import re

import numpy as np
import pytest
import torch

from domaingen.clip import build_clip_model
from domaingen.clip.models import _create
from domaingen.clip.text import get_tokenizer
from domaingen.data.datasets import DIVERSE_WEATHER_CLASSES
from domaingen.data.datasets.builtin import DIVERSE_WEATHER_DOMAINS
from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS, SYNTHETIC_DOMAINS_CLASSES
from domaingen.miniature import standin
from domaingen.miniature.synthetic.world import (
    SHAPE_CAPTIONS,
    STREET_PHRASES,
    WEAK_STREET_PHRASES,
    render_world,
)


def test_world_captions_name_the_object_and_the_domain_and_the_world_is_seeded():
    images, captions, labels = render_world(30, 30, 32)
    assert images.shape == (60, 32, 32, 3) and images.dtype == np.uint8
    for caption, (part, c, d) in zip(captions, labels):
        if part == 0:
            domain = DIVERSE_WEATHER_DOMAINS[d]
            phrases = STREET_PHRASES[domain] + WEAK_STREET_PHRASES.get(domain, ())
            assert DIVERSE_WEATHER_CLASSES[c] in caption
            assert any(caption.endswith(p) for p in phrases), caption
        else:
            style = SYNTHETIC_DOMAINS[d]
            assert any(t.format(SYNTHETIC_DOMAINS_CLASSES[c]) in caption
                       for t in SHAPE_CAPTIONS[style]), caption
    again, _, _ = render_world(30, 30, 32)
    other, _, _ = render_world(30, 30, 32, seed=1001)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert len(set(map(tuple, labels[:30, 2:]))) > 1  # several weather domains drawn


def test_shape_captions_put_the_class_word_and_the_end_of_text_at_many_positions():
    """AD-CLIP's prompts on the ViT stand-in put the class word at token 11-12 and the end of
    text at 13-14: the pretraining captions must cover those positions (and later ones)."""
    _, captions, labels = render_world(0, 400, 32)
    tokens = get_tokenizer("domaingen-semantic-RN")(captions)
    end_of_text = tokens.argmax(dim=1)  # the highest token id
    class_positions = set()
    for row, (_, c, _) in zip(tokens, labels):
        (ids,) = get_tokenizer("domaingen-semantic-RN")([SYNTHETIC_DOMAINS_CLASSES[c]])[:, 1:2]
        class_positions.update((row == ids).nonzero().flatten().tolist())
    assert set(range(3, 16)) <= class_positions and max(class_positions) >= 20
    assert set(range(5, 18)) <= set(end_of_text.tolist())


@pytest.mark.slow
def test_trained_standin_aligns_domain_text_with_image_shifts(standin_clip):
    """After contrastive training on the world, the text direction between two domains points
    along the mean image shift between them. The conftest stand-in (semantic RN, 300 steps)
    measured cos 0.83-0.97 over 38 of the 40 domain pairs, mean 0.89, and 0.37 for night-sunny
    <-> night-rainy (the weakest pair at this schedule); at its random initialisation the same RN
    gives |cos| <= 0.20, mean -0.06."""
    with open(standin_clip + ".json") as f:
        report = json.load(f)
    alignment = list(report["alignment"].values())
    assert len(alignment) == 5 * 4 + 5 * 4
    assert sum(a > 0.6 for a in alignment) >= 36 and min(alignment) > 0.2, report["alignment"]
    assert sum(alignment) / len(alignment) > 0.75
    # Zero-shot class recognition far above chance (1/7 streets, 1/5 shapes): measured 79.6 %
    # on day-clear streets, 52.9 % on photo shapes (random init: 12.3 / 13.0 %).
    assert report["zero_shot_top1"]["daytime_clear"] > 60
    assert report["zero_shot_top1"]["photo"] > 40
    untrained = standin.evaluate_standin(_create("domaingen-semantic-RN", False, 0).eval(),
                                         "domaingen-semantic-RN", num_street=300, num_shapes=240)
    assert max(abs(v) for v in untrained["alignment"].values()) < 0.4


def test_standin_weights_are_built_once_under_the_cache_and_loaded(tmp_path, monkeypatch):
    monkeypatch.setitem(standin.RECIPES, "domaingen-semantic-RN",
                        dict(steps=2, batch_size=8, num_street=16, num_shapes=16))
    monkeypatch.setattr(standin, "evaluate_standin", lambda *a, **k: {"alignment": {}})
    model = build_clip_model("domaingen-semantic-RN", "standin", cache_dir=str(tmp_path), seed=3)
    path = standin.standin_path("domaingen-semantic-RN", str(tmp_path), 3)
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    with open(path + ".json") as f:
        assert json.load(f)["recipe"]["steps"] == 2

    def retrain(*args, **kwargs):
        raise AssertionError("the cached stand-in was trained again")

    monkeypatch.setattr(standin, "train_standin_clip", retrain)
    again = build_clip_model("domaingen-semantic-RN", "standin", cache_dir=str(tmp_path), seed=3)
    assert all(torch.equal(saved[k], v) for k, v in again.state_dict().items())


def test_standin_for_a_model_without_one_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"there is a stand-in for .*domaingen-semantic-RN.*"
                                         r"not for MODEL.CLIP.NAME='RN50'"):
        build_clip_model("RN50", "standin", cache_dir=str(tmp_path))


@pytest.mark.parametrize("break_entry", ["weights without report", "weights cut short"])
def test_a_half_written_cache_entry_is_built_again(tmp_path, monkeypatch, caplog, break_entry):
    monkeypatch.setitem(standin.RECIPES, "domaingen-semantic-RN",
                        dict(steps=1, batch_size=8, num_street=16, num_shapes=16))
    monkeypatch.setattr(standin, "evaluate_standin", lambda *a, **k: {"alignment": {}})
    path = standin.ensure_standin("domaingen-semantic-RN", str(tmp_path), 3)
    whole = open(path, "rb").read()
    if break_entry == "weights without report":  # killed between its two files
        os.remove(path + ".json")
    else:
        with open(path, "r+b") as f:
            f.truncate(len(whole) // 2)
    builds = []
    train = standin.train_standin_clip
    monkeypatch.setattr(standin, "train_standin_clip",
                        lambda *a, **k: builds.append(a) or train(*a, **k))
    with caplog.at_level(logging.INFO, logger="domaingen.miniature.standin"):
        assert standin.ensure_standin("domaingen-semantic-RN", str(tmp_path), 3) == path
    assert len(builds) == 1 and "incomplete or does not match its report" in caplog.text
    assert open(path, "rb").read() == whole and standin.cached_entry(path)


def test_an_unwritable_cache_names_domaingen_cache(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(standin.StandinCacheError, match=re.escape(
            f"The stand-in cache {blocker / 'cache'} is not writable") + ".*DOMAINGEN_CACHE"):
        standin.ensure_standin("domaingen-semantic-RN", str(blocker / "cache"), 0)


def test_a_build_shows_its_progress_with_an_eta(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(standin, "evaluate_standin", lambda *a, **k: {"alignment": {}})
    with caplog.at_level(logging.INFO, logger="domaingen.miniature.standin"):
        standin.train_standin_clip("domaingen-tiny-ViT", str(tmp_path / "s.pt"), steps=20,
                                   batch_size=8, num_street=16, num_shapes=16)
    progress = [r.getMessage() for r in caplog.records if "step" in r.getMessage()]
    assert len(progress) == 10
    assert progress[0].startswith("stand-in domaingen-tiny-ViT: step 2/20  loss ")
    assert progress[-1].startswith("stand-in domaingen-tiny-ViT: step 20/20")
    assert all(re.search(r"eta \d+s$", line) for line in progress)
