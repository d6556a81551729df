"""Configuration: ``add_domaingen_config`` declares every key domaingen adds."""
from .defaults import add_domaingen_config

__all__ = ["add_domaingen_config"]
