"""Building the config of a run from command-line arguments."""
import logging
import os

import torch
import yaml
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog

from domaingen.config import add_domaingen_config
from domaingen.data.datasets import dg_split_names
from domaingen.data.metadata import check_registered
from domaingen.utils.errors import InputError

from .registry import apply_authors_switches, method_of

logger = logging.getLogger(__name__)

D2_DEFAULT_OUTPUT_DIR = "./output"


class ConfigError(InputError, ValueError):
    """A config file or override that cannot be merged; the message names the file."""


def default_output_dir(config_file: str) -> str:
    """``output/<path of the config below configs/, without .yaml>``."""
    path = os.path.normpath(os.path.splitext(config_file)[0])
    parts = path.split(os.sep)
    if "configs" in parts:
        parts = parts[len(parts) - parts[::-1].index("configs"):]
    return os.path.join("output", *parts[-2:])


def apply_dg_benchmark(cfg) -> None:
    """Fill the empty ones of DATASETS.TRAIN/VAL/TEST from DATASETS.DG_BENCHMARK/DG_DOMAIN/
    DG_PROTOCOL (explicitly set lists, e.g. a command-line DATASETS.TEST, are kept)."""
    d = cfg.DATASETS
    if not d.DG_DOMAIN:
        raise ConfigError(f"DATASETS.DG_BENCHMARK={d.DG_BENCHMARK!r} needs DATASETS.DG_DOMAIN "
                          f"(the held-out target, or the source for single_source)")
    try:
        splits = dg_split_names(d.DG_BENCHMARK, d.DG_DOMAIN, d.DG_PROTOCOL)
    except ValueError as e:
        raise ConfigError(f"DATASETS.DG_*: {e}") from e
    d.TRAIN = tuple(d.TRAIN) or tuple(splits["train"])
    d.VAL = tuple(d.VAL) or tuple(splits["val"])
    d.TEST = tuple(d.TEST) or tuple(splits["test"])


def check_config_file(config_file: str, inherited_by=()) -> None:
    """Raise ConfigError naming the file for a config that is not YAML, not a mapping, has a
    ``_BASE_`` that does not exist (naming both files) or inherits from itself."""
    if config_file in inherited_by:
        raise ConfigError(f"_BASE_ cycle: {' -> '.join([*inherited_by, config_file])}")
    try:
        with open(config_file, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.constructor.ConstructorError:
        return  # Python tags: Detectron2 reads the file with its unsafe loader
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{config_file} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config_file} holds no mapping of config keys (its content is "
                          f"{type(data).__name__}: {str(data)[:60]!r})")
    bases = data.get("_BASE_", [])
    for base in bases if isinstance(bases, list) else [bases]:
        path = os.path.expanduser(base)
        if path.startswith(("https://", "http://")):
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(config_file), path))  # absolute: as is
        if not os.path.isfile(path):
            raise ConfigError(f"{config_file}: its _BASE_ {base!r} does not exist ({path})")
        check_config_file(path, (*inherited_by, config_file))


def load_config(config_file: str, opts=()):
    """Detectron2's config + domaingen's keys, merged with ``config_file`` and ``opts``."""
    cfg = add_domaingen_config(get_cfg())
    if not os.path.isfile(config_file):
        raise ConfigError(f"config file {config_file} does not exist")
    check_config_file(config_file)
    try:
        cfg.merge_from_file(config_file)
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"{config_file}: {e}") from e
    flags = [o for o in opts if str(o).startswith("--")]
    if flags:
        raise ConfigError(f"{flags[0]} is among the KEY VALUE overrides {list(opts)}: put the "
                          f"flags (--resume, --eval-only, --num-gpus ...) before them")
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"command-line overrides {list(opts)}: {e}") from e
    if cfg.REPRODUCE_AUTHORS:
        apply_authors_switches(cfg)
        cfg.merge_from_list(list(opts))  # the command line still wins
    if cfg.DATASETS.DG_BENCHMARK:
        apply_dg_benchmark(cfg)
    unregistered = sorted(set(cfg.DATASETS.DROP_EMPTY_TEST_IMAGES) - set(DatasetCatalog.list()))
    if unregistered:
        raise ConfigError(f"{config_file}: DATASETS.DROP_EMPTY_TEST_IMAGES names datasets that "
                          f"are not registered: {unregistered}")
    if cfg.OUTPUT_DIR == D2_DEFAULT_OUTPUT_DIR:
        cfg.OUTPUT_DIR = default_output_dir(config_file)
    for key in ("SOLVER.IMS_PER_BATCH", "TEST.IMS_PER_BATCH"):
        node, leaf = key.split(".")
        if cfg[node][leaf] < 1:
            raise ConfigError(f"{key}={cfg[node][leaf]}: a batch holds at least one image")
    if cfg.SOLVER.EPOCHS <= 0 and cfg.SOLVER.MAX_ITER < 1:
        raise ConfigError(f"SOLVER.MAX_ITER={cfg.SOLVER.MAX_ITER}: train at least one iteration "
                          f"(or count in SOLVER.EPOCHS)")
    try:
        torch.device(cfg.MODEL.DEVICE)
    except RuntimeError:
        raise ConfigError(f"MODEL.DEVICE={cfg.MODEL.DEVICE!r} is not a device: use cpu, cuda or "
                          f"cuda:<index> (e.g. MODEL.DEVICE cuda:0)") from None
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.info(f"MODEL.DEVICE={cfg.MODEL.DEVICE} but CUDA is not available: using cpu")
        cfg.MODEL.DEVICE = "cpu"
    if cfg.SOLVER.AMP.ENABLED and not cfg.MODEL.DEVICE.startswith("cuda"):
        logger.warning(f"SOLVER.AMP.ENABLED applies on CUDA only: off on {cfg.MODEL.DEVICE}")
        cfg.SOLVER.AMP.ENABLED = False
    return cfg


def check_datasets(cfg) -> None:
    """Raise ConfigError for a dataset name in DATASETS.TRAIN/VAL/TEST (or a key the method
    names) that is not registered, listing the closest registered names."""
    for key in ("TRAIN", "VAL", "TEST", *method_of(cfg).dataset_keys):
        try:
            check_registered(cfg.DATASETS[key], f"DATASETS.{key}")
        except ValueError as e:
            raise ConfigError(str(e)) from None


def setup(args):
    """The config of ``tools/train_net.py``'s arguments, its dataset names checked
    (:func:`domaingen.engine.run` locks, logs and seeds)."""
    cfg = load_config(args.config_file, args.opts)
    check_datasets(cfg)
    return cfg
