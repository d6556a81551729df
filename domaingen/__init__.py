"""domaingen: CLIP-based domain generalization on Detectron2.

Importing the package registers its models and datasets with Detectron2's registries.
"""
from . import data, modeling  # noqa: F401  (registration side effects)
from .config import add_domaingen_config

__all__ = ["add_domaingen_config"]
__version__ = "0.1.0"
