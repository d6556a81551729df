"""The methods, one folder each; importing one registers it (its models with Detectron2's
registries, its needs with ``domaingen.engine.registry.METHOD_REGISTRY``). Adding a method is
its folder plus one line here."""
from . import adclip, clip_gap, prompt_learning, spg  # noqa: F401  (registration)
