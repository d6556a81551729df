"""domaingen's YAML configs, installed as the package data domaingen.configs."""
