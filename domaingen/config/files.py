"""The YAML configs shipped with domaingen (Detectron2's ``model_zoo.get_config_file`` idea).

They live in the checkout's top-level ``configs/`` and are installed as the package data
``domaingen.configs`` (setup.py maps one onto the other), so the same names resolve from a
checkout, an editable install or a wheel.
"""
import importlib.resources
import os


def get_config_file(name: str) -> str:
    """The path of the shipped config ``name`` (relative to ``configs/``, e.g.
    ``"quick/diverse_weather_clip_rcnn.yaml"``); a path that exists is returned as it is."""
    if os.path.isfile(name):
        return name
    root = importlib.resources.files("domaingen.configs")
    path = root.joinpath(*name.replace(os.sep, "/").split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"{name} is neither a file nor a config shipped with domaingen "
                                f"(below {root})")
    return str(path)
