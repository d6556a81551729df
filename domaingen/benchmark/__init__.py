"""``tools/benchmark.py``: timed cases of domaingen's hot paths beside twins of the authors'
paths."""
