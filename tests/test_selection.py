"""Model selection on a validation metric (TEST.SELECTION_METRIC): a metric the evaluation never
computes is refused at start-up, and a run interrupted after its best evaluation selects, after
--resume, the model that an uninterrupted run selects."""
import os

import pytest
import torch
from detectron2.engine import HookBase
from detectron2.utils.events import get_event_storage

from domaingen.engine import ConfigError, Trainer, load_config

COOP = os.path.join(os.path.dirname(__file__), "..", "configs", "quick",
                    "synthetic_domains_coop.yaml")
# Validation top-1 by event-storage iteration (evaluations after iterations 1 and 3, and after
# training): the best is the second.
SCORES = {1: 50.0, 3: 80.0, 6: 60.0}


def scripted_validation(cls, cfg, model):
    return {"val": {"top1": SCORES[get_event_storage().iter]}}


class Killed(Exception):
    pass


class KillAfterIteration4(HookBase):
    def after_step(self):
        if self.trainer.iter == 4:
            raise Killed


def trainer(out, resume=False, *hooks):
    cfg = load_config(COOP, [
        "SOLVER.MAX_ITER", "6", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "2",
        "TEST.SELECTION_METRIC", "val/top1", "OUTPUT_DIR", str(out)])
    trainer = Trainer(cfg)
    trainer.register_hooks(hooks)
    trainer.resume_or_load(resume=resume)
    return trainer


def test_an_interrupted_run_selects_the_model_an_uninterrupted_run_selects(
        synthetic_domains, tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "validate", classmethod(scripted_validation))
    trainer(tmp_path / "whole").train()
    with pytest.raises(Killed):  # stopped after the best evaluation ...
        trainer(tmp_path / "interrupted", False, KillAfterIteration4()).train()
    trainer(tmp_path / "interrupted", True).train()  # ... and resumed
    whole, resumed = (torch.load(tmp_path / run / "model_best.pth", weights_only=True)
                      for run in ("whole", "interrupted"))
    assert whole["iteration"] == resumed["iteration"]
    assert whole["model"].keys() == resumed["model"].keys()
    assert all(torch.equal(whole["model"][k], resumed["model"][k]) for k in whole["model"])
    final = torch.load(tmp_path / "whole" / "model_final.pth", weights_only=True)
    assert not all(torch.equal(final["model"][k], whole["model"][k]) for k in final["model"])


@pytest.mark.parametrize("metric", ["val/top-1", "synthetic_domains_sketch_test/bbox/AP50"])
def test_a_metric_the_evaluation_never_computes_is_refused_at_start_up(synthetic_domains, metric,
                                                                        tmp_path):
    cfg = load_config(COOP, ["TEST.EVAL_PERIOD", "2", "TEST.SELECTION_METRIC", metric,
                             "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(ConfigError, match=f"TEST.SELECTION_METRIC='{metric}' is not computed by "
                                          f"this run's evaluation: use val/top1 "):
        Trainer(cfg)
