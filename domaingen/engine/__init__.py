"""The method-agnostic engine: the Trainer, ``run(cfg)``, checkpointing, launch, the method
registry."""
from .checkpoint import AtomicCheckpointer, CheckpointError
from .launch import create_ddp_model, launch
from .registry import METHOD_REGISTRY, Method, method_of
from .runner import RunResult, run
from .setup import ConfigError, default_output_dir, load_config, setup
from .trainer import Trainer, TrainingDivergedError

__all__ = [
    "AtomicCheckpointer", "CheckpointError", "ConfigError", "METHOD_REGISTRY", "Method",
    "RunResult", "Trainer", "TrainingDivergedError", "create_ddp_model", "default_output_dir",
    "launch", "load_config", "method_of", "run", "setup",
]
