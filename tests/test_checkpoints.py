"""Checkpoints and OUTPUT_DIR: weights that do not fit, broken ``last_checkpoint`` tags, resuming
a finished run, a full disk, stale temporaries, a read-only OUTPUT_DIR and one writer per
OUTPUT_DIR."""
import errno
import io
import multiprocessing
import os
import re
import shutil
import time

import pytest
import torch
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_model
from detectron2.utils.env import seed_all_rng
from helpers import QUICK_CONFIG
from torch import nn

import domaingen.engine.lock as lock
import domaingen.utils.files as files
from domaingen.engine import AtomicCheckpointer, CheckpointError, ConfigError, Trainer, load_config
from domaingen.engine.cli import main, run_cli
from domaingen.engine.lock import OutputDirError, lock_output_dir, release_output_dir

QUICK = os.path.join(os.path.dirname(__file__), "..", "configs", "quick")
COOP = os.path.join(QUICK, "synthetic_domains_coop.yaml")
GAP = os.path.join(QUICK, "diverse_weather_clip_gap.yaml")


def saved(config, path, opts=()):
    """A model of ``config`` saved as ``path`` (random weights: what matters is what it holds)."""
    model = build_model(load_config(config, list(opts)))
    AtomicCheckpointer(model, save_dir=os.path.dirname(path)).save(
        os.path.basename(path)[:-len(".pth")])
    return str(path), model


def evaluate(config, out_dir, *opts):
    return main(default_argument_parser().parse_args(
        ["--config-file", config, "--eval-only", *opts, "OUTPUT_DIR", str(out_dir)]))


# -------------------------------------------------------------------------- weights that do not fit

def test_eval_only_refuses_weights_that_do_not_fit(synthetic_weather, synthetic_domains, tmp_path):
    coop, _ = saved(COOP, tmp_path / "coop.pth")
    detector, _ = saved(QUICK_CONFIG, tmp_path / "detector.pth")
    out = tmp_path / "out"
    with pytest.raises(CheckpointError) as err:
        evaluate(QUICK_CONFIG, out)
    assert str(err.value) == (
        "No checkpoint to load (MODEL.WEIGHTS is empty): the ClipRCNN would be evaluated with "
        "untrained weights. Set MODEL.WEIGHTS to a trained checkpoint, e.g. MODEL.WEIGHTS "
        "<OUTPUT_DIR>/model_final.pth.")
    with pytest.raises(CheckpointError, match=re.escape(
            f"Checkpoint {tmp_path / 'nope.pth'} does not exist (MODEL.WEIGHTS)")):
        evaluate(QUICK_CONFIG, out, "MODEL.WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError) as err:
        evaluate(QUICK_CONFIG, out, "MODEL.WEIGHTS", coop)
    assert re.match(re.escape(f"{coop} does not fit the ClipRCNN this config builds (0 of its ")
                    + r"\d+ tensors found\): \d+ missing \(backbone.stem.conv1.weight, .*; 1 "
                    r"unexpected \(prompts.ctx\)\. Use the config the checkpoint was trained with",
                    str(err.value)), str(err.value)
    with pytest.raises(CheckpointError, match=re.escape(
            f"{detector} does not fit the CoOpClassifier this config builds (0 of its 1 tensors "
            f"found): 1 missing (prompts.ctx); ")):
        evaluate(COOP, out, "MODEL.WEIGHTS", detector)
    # Another CLIP behind the same prompt shape (the towers are not in the checkpoint) ...
    with pytest.raises(CheckpointError, match=re.escape(
            "(1 of its 1 tensors found): 1 other CLIP ('domaingen-tiny-ViT' in the file, "
            "'domaingen-tiny-RN' in the model (MODEL.CLIP.NAME))")):
        evaluate(COOP, out, "MODEL.WEIGHTS", coop, "MODEL.CLIP.NAME", "domaingen-tiny-RN")
    # ... and a prompt of another shape.
    with pytest.raises(CheckpointError, match=re.escape(
            "(0 of its 1 tensors found): 1 of another shape (prompts.ctx: (4, 64) in the file, "
            "(2, 64) in the model)")):
        evaluate(COOP, out, "MODEL.WEIGHTS", coop, "MODEL.PROMPT.N_CTX", "2",
                 "MODEL.PROMPT.CTX_INIT", "a photo")
    with pytest.raises(ConfigError, match=re.escape("DATASETS.TEST is empty: there is nothing to "
                                                    "evaluate.")):
        evaluate(QUICK_CONFIG, out, "MODEL.WEIGHTS", detector, "DATASETS.TEST", "()")
    assert not os.path.exists(out / "results.md")


def test_training_initialisation_may_load_partially_and_says_so(synthetic_weather, tmp_path,
                                                                caplog):
    detector, base = saved(QUICK_CONFIG, tmp_path / "detector.pth")
    gap = build_model(load_config(GAP))
    shared = set(base.state_dict()) & set(gap.state_dict())
    AtomicCheckpointer(gap).load(detector)
    total, loaded = len(gap.state_dict()), len(shared)
    assert 0 < loaded < total
    assert (f"Initialised {loaded} of the model's {total} tensors from {detector}, the others "
            f"keep their initialisation: {total - loaded} missing "
            "(augmentation_bank.") in caplog.text
    for key in shared:
        assert torch.equal(gap.state_dict()[key], base.state_dict()[key]), key
    coop, _ = saved(COOP, tmp_path / "coop.pth")
    with pytest.raises(CheckpointError, match=re.escape(f"{coop} does not fit the ClipGapRCNN "
                                                        f"this config builds (0 of its")):
        AtomicCheckpointer(gap).load(coop)


# ------------------------------------------------------------------------------ resuming

def train(config, opts):
    seed_all_rng(0)
    trainer = Trainer(load_config(config, opts))
    trainer.resume_or_load(resume=True)
    trainer.train()
    return trainer


COOP_RUN = ["SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.IMS_PER_BATCH", "4",
            "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()", "SEED", "0"]


def test_resume_completes_an_interrupted_final_save_and_refuses_past_max_iter(synthetic_domains,
                                                                              tmp_path):
    train(COOP, [*COOP_RUN, "OUTPUT_DIR", str(tmp_path / "full")])
    # Killed while writing model_final.pth: the iteration-4 checkpoint is tagged, the final one
    # exists only as atomic_write's temporary file.
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    shutil.copy(tmp_path / "full" / "model_0000003.pth", stopped)
    (stopped / "last_checkpoint").write_text("model_0000003.pth")
    stale = [stopped / ".model_final.pth.k2j4.tmp", stopped / ".last_checkpoint.x9q1.tmp"]
    for path in stale:
        path.write_bytes(b"torn")
    resumed = train(COOP, [*COOP_RUN, "OUTPUT_DIR", str(stopped)])
    assert resumed.start_iter == 4
    final = torch.load(stopped / "model_final.pth", weights_only=True)
    expected = torch.load(tmp_path / "full" / "model_final.pth", weights_only=True)
    assert torch.equal(final["model"]["prompts.ctx"], expected["model"]["prompts.ctx"])
    assert final["iteration"] == expected["iteration"] == 3
    assert (stopped / "last_checkpoint").read_text() == "model_final.pth"
    assert not any(p.exists() for p in stale)

    with pytest.raises(CheckpointError) as err:
        train(COOP, [*COOP_RUN, "SOLVER.MAX_ITER", "3", "OUTPUT_DIR", str(stopped)])
    last = stopped / "model_final.pth"
    assert str(err.value) == (
        f"--resume: the last checkpoint {last} holds 4 trained iterations, more than "
        f"SOLVER.MAX_ITER=3: there is nothing to train and its weights are not those of a "
        f"3-iteration run. Raise SOLVER.MAX_ITER to train on, evaluate it with --eval-only "
        f"MODEL.WEIGHTS {last}, or set another OUTPUT_DIR to start over.")
    with pytest.raises(CheckpointError, match=re.escape(
            f"--resume: {last} does not fit the CoOpClassifier this config builds: 1 of another "
            f"shape (prompts.ctx: (4, 64) in the file, (2, 64) in the model). The config changed "
            f"since that checkpoint was written: resume with the run's own config")):
        train(COOP, [*COOP_RUN, "MODEL.PROMPT.N_CTX", "2", "MODEL.PROMPT.CTX_INIT", "a photo",
                     "OUTPUT_DIR", str(stopped)])


def test_broken_last_checkpoint_tag_says_what_to_do(tmp_path):
    checkpointer = AtomicCheckpointer(nn.Linear(2, 2), save_dir=str(tmp_path))
    checkpointer.save("model_0000004")
    checkpointer.save("model_0000009")
    tag = tmp_path / "last_checkpoint"
    tag.write_text("")
    with pytest.raises(CheckpointError) as err:
        checkpointer.resume_or_load("", resume=True)
    assert str(err.value) == (
        f"--resume: {tag} is empty; to resume from the newest checkpoint present, write its name "
        f"into it (echo model_0000009.pth > {tag}). To start over, delete {tag} or set another "
        f"OUTPUT_DIR.")
    tag.write_text("model_0000012.pth")
    with pytest.raises(CheckpointError, match=re.escape(
            f"--resume: {tag} names model_0000012.pth, which does not exist; to resume from the "
            f"newest checkpoint present, write its name into it (echo model_0000009.pth > {tag})")):
        checkpointer.resume_or_load("", resume=True)


def test_a_full_disk_names_output_dir_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(model, save_dir=str(tmp_path))
    checkpointer.save("model_0000001")
    before = (tmp_path / "model_0000001.pth").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with torch.no_grad():
        model.weight.add_(1)
    with pytest.raises(CheckpointError) as err:
        checkpointer.save("model_0000002")
    assert str(err.value) == (
        f"The disk of OUTPUT_DIR {tmp_path} is full: no space left to write "
        f"{tmp_path / 'model_0000002.pth'}. The previous checkpoint "
        f"{tmp_path / 'model_0000001.pth'} is intact; free space (or move the run to another "
        f"disk), then continue with --resume.")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"


def test_a_disk_that_fills_inside_torch_save_is_named_too(tmp_path, monkeypatch):
    """torch.save reports a failed write of its zip stream as RuntimeError("unexpected pos")."""
    model = nn.Linear(200, 200)
    checkpointer = AtomicCheckpointer(model, save_dir=str(tmp_path))
    fdopen = files.os.fdopen

    class FillingUp(io.RawIOBase):
        def __init__(self, fd, mode):
            self.file, self.written = fdopen(fd, mode), 0

        def writable(self):
            return True

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def close(self):
            self.file.close()
            super().close()

    monkeypatch.setattr(files.os, "fdopen", FillingUp)
    with pytest.raises(CheckpointError, match=re.escape(
            f"The disk of OUTPUT_DIR {tmp_path} is full: no space left to write "
            f"{tmp_path / 'model_final.pth'}. No checkpoint was written before")):
        checkpointer.save("model_final")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ OUTPUT_DIR

def test_an_unwritable_output_dir_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "run"
    with pytest.raises(SystemExit) as err:  # tools/train_net.py: the message, no traceback
        run_cli(["--config-file", COOP, "OUTPUT_DIR", str(out)])
    assert err.value.code == (f"OutputDirError: OUTPUT_DIR {out} is not writable (Not a "
                              f"directory): set OUTPUT_DIR to a folder this user can write")

    def denied(path, *args):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(lock.os, "open", denied)
    with pytest.raises(OutputDirError, match=re.escape(
            f"OUTPUT_DIR {tmp_path} is not writable (Permission denied)")):
        lock_output_dir(str(tmp_path))


def _hold_lock(output_dir, ready):
    lock_output_dir(output_dir)
    ready.set()
    time.sleep(120)  # until killed


def test_a_second_writer_is_refused_and_a_killed_holder_blocks_nothing(tmp_path):
    out = str(tmp_path)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(out, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(OutputDirError) as err:
            lock_output_dir(out)
        assert str(err.value).startswith(
            f"OUTPUT_DIR {out} is in use by another run: process {holder.pid} on ")
        assert str(err.value).endswith(
            f"holds {tmp_path / 'run.lock'}. Two runs in one OUTPUT_DIR overwrite each other's "
            f"checkpoints and metrics: wait for that run to end or stop it, or set another "
            f"OUTPUT_DIR.")
    finally:
        holder.kill()  # SIGKILL: the lock file stays, the lock does not
        holder.join()
    assert os.path.exists(tmp_path / "run.lock")
    taken = lock_output_dir(out)
    assert taken.startswith(f"{tmp_path / 'run.lock'} was left by process {holder.pid} on ")
    assert taken.endswith(", which has ended: taken over")
    assert lock_output_dir(out) == ""  # re-entrant in the holding process
    release_output_dir(out)
    assert not os.path.exists(tmp_path / "run.lock")
