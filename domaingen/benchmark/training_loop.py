"""Training-loop cases: the Trainer's own loader and run step on synthetic data written in the
real on-disk formats, with 0 or 2 loader workers. Besides the step time they report
``loader_share``: the ``data_time`` the run step logs over the step time (the trainer log's
``data_time`` / ``time``).

The data (generated once per process in a temporary datasets root, registered with the
``benchmark_`` prefix): the synthetic classification domains as 256 px JPEGs (PACS images are
227 px) and synthetic Diverse Weather at 1000x600, read at Detectron2's 600 px short side.
"""
import atexit
import logging
import os
import shutil
import tempfile

from detectron2.utils.events import EventStorage

from domaingen.data.datasets import register_all, register_all_classification
from domaingen.engine import Trainer
from domaingen.miniature.synthetic import generate_diverse_weather
from domaingen.miniature.synthetic.domains import generate_domains

PREFIX = "benchmark_"
DOMAIN_IMAGE_SIDE = 256
WEATHER_IMAGE_SIZE = (1000, 600)  # width, height
_ROOTS = []


def synthetic_root() -> str:
    """The temporary datasets root, generated and registered on first use."""
    if not _ROOTS:
        root = tempfile.mkdtemp(prefix="domaingen-benchmark-")
        atexit.register(shutil.rmtree, root, True)
        generate_domains(root, num_per_class=8, image_size=DOMAIN_IMAGE_SIDE)
        generate_diverse_weather(os.path.join(root, "synthetic_diverse_weather"), num_train=16,
                                 num_test=1, num_target=1, image_size=WEATHER_IMAGE_SIZE)
        register_all(root, prefix=PREFIX)
        register_all_classification(root, prefix=PREFIX)
        _ROOTS.append(root)
    return _ROOTS[0]


def _domains(*domains: str) -> str:
    return repr(tuple(f"{PREFIX}synthetic_domains_{d}_train" for d in domains))


# method -> (config below configs/, dataset options)
SETUPS = {
    "coop": ("quick/synthetic_domains_coop.yaml",
             ["DATASETS.TRAIN", _domains("photo", "cartoon", "painting")]),
    "adclip": ("quick/synthetic_domains_adclip.yaml",
               ["DATASETS.TRAIN", _domains("photo"),
                "DATASETS.TRAIN_UNLABELED", _domains("sketch")]),
    "detector": ("quick/diverse_weather_clip_rcnn.yaml",
                 ["DATASETS.TRAIN", f"('{PREFIX}synthetic_dw_daytime_clear_train',)",
                  "INPUT.MIN_SIZE_TRAIN", "(600,)", "INPUT.MAX_SIZE_TRAIN", "1000"]),
}


def train_loop_case(method: str, workers: int, clip_names: dict):
    """``Trainer.run_step`` of ``method`` on its synthetic training set, ``workers`` loader
    workers, CLIP model ``clip_names[--model]``; the step's report adds ``loader_share`` over
    the timed steps."""
    def setup(ctx):
        synthetic_root()
        config, data_opts = SETUPS[method]
        detection = method == "detector"
        batch = ctx.args.batch or (
            (4 if ctx.device == "cuda" else 2) if detection else
            (32 if ctx.device == "cuda" else 16 if ctx.model_key == "tiny" else 4))
        cfg = ctx.load(config, data_opts + [
            "MODEL.CLIP.NAME", clip_names[ctx.model_key], "DATALOADER.NUM_WORKERS", str(workers),
            "SOLVER.IMS_PER_BATCH", str(batch), "DATASETS.TEST", "()",
            "OUTPUT_DIR", tempfile.mkdtemp(dir=synthetic_root())])
        ctx.free()
        logging.disable(logging.INFO)  # the Trainer's dataset and model summaries
        try:
            trainer = Trainer(cfg)
        finally:
            logging.disable(logging.NOTSET)
        storage = EventStorage(0)
        data_times = []

        def step():
            with storage:
                trainer.iter = storage.iter
                trainer.run_step()
                data_times.append(storage.history("data_time").latest())
                storage.step()

        def report(times):
            return {"loader_share": sum(data_times[-len(times):]) / sum(times)}

        step.report = report
        images = 2 * batch if method == "adclip" else batch
        label = f"{batch}+{batch}" if method == "adclip" else str(batch)
        return step, f"{label} images, {workers} loader workers", images

    return setup


def cases(methods, clip_names: dict) -> list:
    """``train_loop[<method>,<0|2> workers]`` for each of ``methods``."""
    return [(f"train_loop[{m},{w} workers]", train_loop_case(m, w, clip_names))
            for m in methods for w in (0, 2)]
