"""``tools/benchmark.py``: timed cases of domaingen's hot paths beside their naive twins."""
