"""Training and launching: the Trainer, checkpointing, CPU/GPU/torchrun launch, run setup."""
from .checkpoint import AtomicCheckpointer, CheckpointError
from .launch import create_ddp_model, launch
from .setup import ConfigError, default_output_dir, load_config, setup
from .trainer import Trainer, TrainingDivergedError

__all__ = [
    "AtomicCheckpointer", "CheckpointError", "ConfigError", "Trainer", "TrainingDivergedError",
    "create_ddp_model", "default_output_dir", "launch", "load_config", "setup",
]
