"""domaingen: CLIP-based domain generalization on Detectron2.

Importing the package registers its models, datasets and methods with the registries; it sets
nothing process-wide (the tools do: :mod:`domaingen.utils.process`). Two messages that the
libraries print while being imported, and that concern neither domaingen nor its users, are
kept off for the duration of the import only.
"""
from .utils.process import quiet_library_imports

with quiet_library_imports():
    from . import data, methods, miniature, modeling  # noqa: F401  (registration side effects)
    from .config import add_domaingen_config, get_config_file

__all__ = ["add_domaingen_config", "get_config_file"]
__version__ = "0.1.0"
