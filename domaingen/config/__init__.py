"""Configuration: ``add_domaingen_config`` declares every key domaingen adds (the shared ones
and every registered method's); ``get_config_file`` finds a shipped YAML config."""
from .defaults import add_domaingen_config
from .files import get_config_file

__all__ = ["add_domaingen_config", "get_config_file"]
