"""The method registry: what each method asks of the engine, declared next to its code.

A method subclasses :class:`Method` in its own folder and registers it::

    @METHOD_REGISTRY.register()
    class MyMethod(Method):
        meta_architectures = ("MyClassifier",)
        task = "classification"
        add_config = staticmethod(add_my_config)

The engine looks a config's method up by ``MODEL.META_ARCHITECTURE`` (:func:`method_of`) and
asks it, never naming one. A hook that returns ``None`` leaves the engine's default in place.
"""
from typing import Callable, Dict, List, Optional, Tuple, Type

from detectron2.utils.registry import Registry

METHOD_REGISTRY = Registry("METHOD")
METHOD_REGISTRY.__doc__ = "Methods (subclasses of Method), by class name."

TASKS = ("detection", "classification")


class Method:
    """A method's needs. The defaults describe a Detectron2 detector trained by its
    ``SimpleTrainer`` (what an unregistered meta-architecture gets)."""

    # The META_ARCH_REGISTRY names this method builds.
    meta_architectures: Tuple[str, ...] = ()
    # "detection" (DetectionMapper loaders, VOC AP) or "classification" (class-folder loaders,
    # top-1 accuracy, validation-based selection).
    task: str = "detection"
    # False: nothing trains (zero-shot); running the config evaluates it.
    trains: bool = True
    # Config key -> the value that reproduces the authors' code (``REPRODUCE_AUTHORS True``).
    authors_switches: Dict[str, object] = {}
    # DATASETS keys besides TRAIN/VAL/TEST whose names must be registered datasets.
    dataset_keys: Tuple[str, ...] = ()
    # Adds the method's config keys with their defaults (None: it has none of its own).
    add_config: Optional[Callable] = None

    @classmethod
    def hooks(cls, cfg) -> List:
        """Hooks that run before Detectron2's default ones (e.g. a step before training)."""
        return []

    @classmethod
    def build_train_loader(cls, cfg):
        """The training loader, or None for the engine's (``DATASETS.TRAIN`` by task)."""
        return None

    @classmethod
    def build_run_step(cls, cfg, model, build_train_loader: Callable):
        """``(trainer, optimizer)``: a Detectron2 ``SimpleTrainer``-like object that runs one
        iteration, and the optimizer the LR schedule steps; None for the engine's
        ``SimpleTrainer``/``AMPTrainer`` over ``build_train_loader(cfg)``. Loaders built here
        through ``build_train_loader(cfg, seed_offset)`` resume with the run."""
        return None

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        """The LR scheduler, or None for the engine's (``SOLVER.LR_SCHEDULER_NAME``)."""
        return None

    @classmethod
    def first_iteration(cls, cfg) -> int:
        """The iteration a fresh run starts at (later than 0 when something before training
        uses up part of the schedule)."""
        return 0


def registered_methods() -> List[Type[Method]]:
    """Every registered method, in registration order."""
    return [method for _, method in METHOD_REGISTRY]


def method_of(cfg) -> Type[Method]:
    """The method that builds ``cfg.MODEL.META_ARCHITECTURE`` (:class:`Method` if none does)."""
    name = cfg.MODEL.META_ARCHITECTURE
    for method in registered_methods():
        if name in method.meta_architectures:
            return method
    return Method


def add_methods_config(cfg) -> None:
    """Every registered method's config keys (each ``add_config`` once)."""
    for add in dict.fromkeys(m.add_config for m in registered_methods() if m.add_config):
        add(cfg)


def apply_authors_switches(cfg) -> None:
    """Set every authors' switch of ``cfg``'s method (in place, ``cfg`` not frozen)."""
    for key, value in method_of(cfg).authors_switches.items():
        node, _, leaf = key.rpartition(".")
        target = cfg
        for part in node.split("."):
            target = target[part]
        target[leaf] = value
