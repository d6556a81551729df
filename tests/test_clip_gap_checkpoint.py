"""Converting a checkpoint saved in the CLIP-the-Gap authors' module layout."""
import os
import re
import runpy

import pytest
import torch
from clip_gap_helpers import GAP_CONFIG, TARGETS, TRAIN_SET, small_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils as utils
from detectron2.modeling import build_model

from domaingen.clip import build_clip_model
from domaingen.utils.files import OutputFileError

# The tiny CLIP's text tower runs plain GELU: tell the converter (OpenAI's would be QuickGELU).
OPTS = ["MODEL.CLIP.FROZEN_BN", "True", "MODEL.CLIP_GAP.TARGET_PROMPTS", str(TARGETS),
        "MODEL.CLIP.QUICK_GELU", "false"]
# Their module names for the CLIP visual tower, by our prefix (written from their modeling code).
THEIR_PREFIX = {"backbone.stem.": "backbone.enc.", "backbone.res2.": "backbone.enc.layer1.",
                "backbone.res3.": "backbone.enc.layer2.", "backbone.res4.": "backbone.enc.layer3.",
                "roi_heads.res5.": "backbone.enc.layer4.",
                "roi_heads.attnpool.": "backbone.enc.attnpool."}
TEXT = "roi_heads.box_predictor.cls_score.model."
TOOL = os.path.join(os.path.dirname(__file__), "..", "tools", "convert_clip_gap_checkpoint.py")


def main(argv):
    runpy.run_path(TOOL, run_name="convert_clip_gap_checkpoint")["main"](argv)


def authors_layout(model, text_clip):
    """Our detector's weights as the authors' ClipRCNNWithClipBackboneWithOffsetGenTrainable
    would save them: the visual tower under backbone.enc and its aliases, the whole CLIP (and a
    deep copy) in the box predictor, BatchNorm step counts, their unused heads."""
    state = {}
    for key, value in model.state_dict().items():
        for ours, theirs in THEIR_PREFIX.items():
            if key.startswith(ours):
                name = theirs + key[len(ours):]
                state[name] = value.clone()
                state[TEXT + "visual." + name[len("backbone.enc."):]] = value.clone()
                if name.endswith("running_var"):
                    state[name.replace("running_var", "num_batches_tracked")] = torch.tensor(7)
                match = re.match(r"backbone\.enc\.layer3\.(\d+)\.(.*)", name)
                if match and int(match.group(1)) < 19:
                    state[f"backbone.backbone_unchanged.{match.group(1)}.{match.group(2)}"] = value
        if key.startswith(("proposal_generator.", "roi_heads.box_predictor.bbox_pred.")):
            state[key] = value.clone()
    state["offsets"] = model.augmentation_bank.offsets.detach().clone()
    for key, value in text_clip.state_dict().items():
        if not key.startswith("visual."):
            state[TEXT + key] = value.clone()
            state["roi_heads.box_predictor.cls_score.frozen_clip_model." + key] = value.clone()
            state["roi_heads.clip_im_predictor.model." + key] = value.clone()
    state["roi_heads.res5.0.conv1.weight"] = torch.randn(64, 32, 1, 1)  # Detectron2's res5
    state["roi_heads.res5.0.conv1.norm.running_mean"] = torch.zeros(64)
    state["backbone.proj.weight"] = torch.randn(64, 64)
    state["roi_heads.box_predictor.cls_score.projection.weight"] = torch.randn(64, 256)
    return state


@pytest.fixture
def their_checkpoint(synthetic_weather, tmp_path):
    torch.manual_seed(0)
    model = build_model(small_cfg(*OPTS[-2:]))
    with torch.no_grad():
        model.augmentation_bank.offsets.normal_(0, 0.5)
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    path = tmp_path / "their_model_best.pth"
    torch.save({"model": authors_layout(model, build_clip_model("domaingen-tiny-RN")),
                "iteration": 4999}, path)
    return model.eval(), path


def detections(model, dataset_dict):
    image = utils.read_image(dataset_dict["file_name"], format="BGR")
    inputs = [{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()),
               "height": image.shape[0], "width": image.shape[1]}]
    with torch.no_grad():
        return model(inputs)[0]["instances"]


def test_converted_checkpoint_gives_the_same_detections(their_checkpoint, tmp_path):
    original, path = their_checkpoint
    out = tmp_path / "ours.pth"
    main([str(path), str(out), "--config-file", GAP_CONFIG, *OPTS])
    fresh = build_model(small_cfg(*OPTS[-2:], "MODEL.CLIP.INIT_SEED", "5")).eval()
    assert not torch.allclose(fresh.roi_heads.box_predictor.text_embeddings,
                              original.roi_heads.box_predictor.text_embeddings)
    DetectionCheckpointer(fresh).load(str(out), checkpointables=[])
    saved = torch.load(out, weights_only=True)["model"]
    assert set(saved) == set(original.state_dict())
    # Marked as optimized, so that training from it does not run the optimization step again.
    assert int(fresh.augmentation_bank.optimized_iters) > 0
    for key, value in original.state_dict().items():
        if key != "augmentation_bank.optimized_iters":
            torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)
    for d in DatasetCatalog.get(TRAIN_SET)[:2]:
        expected, got = detections(original, d), detections(fresh, d)
        assert len(expected) > 0
        torch.testing.assert_close(got.pred_boxes.tensor, expected.pred_boxes.tensor)
        torch.testing.assert_close(got.scores, expected.scores)
        assert torch.equal(got.pred_classes, expected.pred_classes)


def test_a_tensor_that_fits_nowhere_is_named(their_checkpoint, tmp_path):
    _, path = their_checkpoint
    data = torch.load(path, weights_only=True)
    data["model"]["roi_heads.mystery_head.weight"] = torch.zeros(3)
    torch.save(data, path)
    with pytest.raises(SystemExit, match=r"1 tensors of the checkpoint have no place in "
                                         r"ClipGapRCNN: \['roi_heads.mystery_head.weight'\]"):
        main([str(path), str(tmp_path / "ours.pth"), "--config-file", GAP_CONFIG, *OPTS])
    with pytest.raises(SystemExit, match="use a ClipGapRCNN config"):
        main([str(path), str(tmp_path / "ours.pth"), "--config-file", GAP_CONFIG, *OPTS,
              "MODEL.META_ARCHITECTURE", "ClipRCNN"])


def test_not_their_layout(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"backbone.res4.0.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(SystemExit, match="not a CLIP-the-Gap authors' checkpoint: it has no "
                                         r"backbone.enc.\*"):
        main([str(path), str(tmp_path / "ours.pth"), "--config-file", GAP_CONFIG, *OPTS])


def test_an_output_that_cannot_be_written_is_named(their_checkpoint, tmp_path):
    _, path = their_checkpoint
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(OutputFileError, match=re.escape(f"{folder} is a folder: name a file")):
        main([str(path), str(folder), "--config-file", GAP_CONFIG, *OPTS])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputFileError, match=re.escape(f"Cannot write {blocker / 'ours.pth'}: ")):
        main([str(path), str(blocker / "ours.pth"), "--config-file", GAP_CONFIG, *OPTS])
    assert blocker.read_text() == "" and os.listdir(folder) == []


def test_a_file_that_is_not_a_checkpoint_gets_no_pickle_advice(tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    with pytest.raises(SystemExit) as err:
        main([str(image), str(tmp_path / "ours.pth"), "--config-file", GAP_CONFIG, *OPTS])
    assert "is not a readable checkpoint" in str(err.value)
    assert "--allow-pickle" not in str(err.value)


def test_the_converter_never_writes_over_its_source_or_an_existing_file(their_checkpoint,
                                                                        tmp_path):
    _, path = their_checkpoint
    before = path.read_bytes()
    with pytest.raises(SystemExit, match="is the authors' checkpoint itself"):
        main([str(path), str(path), "--config-file", GAP_CONFIG, *OPTS])
    existing = tmp_path / "ours.pth"
    existing.write_bytes(b"an earlier file")
    with pytest.raises(SystemExit, match=re.escape(f"{existing} exists: name a new file, or "
                                                   f"pass --overwrite")):
        main([str(path), str(existing), "--config-file", GAP_CONFIG, *OPTS])
    assert path.read_bytes() == before and existing.read_bytes() == b"an earlier file"
    main([str(path), str(existing), "--overwrite", "--config-file", GAP_CONFIG, *OPTS])
    assert "model" in torch.load(existing, weights_only=True)
