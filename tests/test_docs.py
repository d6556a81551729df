"""The docs hold: every relative link and every configs/ or tools/ path they name exists, and the
reliability page's bad-input table names tests that exist and raise the error it lists."""
import ast
import glob
import itertools
import os
import re

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAGES = sorted([os.path.join(REPO, "README.md"),
                *glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)])
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w/.-])((?:configs|tools)/[\w./{},*-]+)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def expand_braces(path):
    """``a_{x,y}.yaml`` -> ``a_x.yaml``, ``a_y.yaml``."""
    parts = re.split(r"\{([^}]*)\}", path)
    options = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*options)]


def rel(page):
    return os.path.relpath(page, REPO)


def test_the_readme_is_short():
    assert len(read(os.path.join(REPO, "README.md")).splitlines()) <= 150


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(read(page)):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(page), target.split("#")[0]))
        if not os.path.exists(path):
            broken.append(target)
    assert not broken


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_named_configs_and_tools_exist(page):
    missing = []
    for name in PATH.findall(read(page)):
        name = name.rstrip(".,")
        for path in expand_braces(name):
            pattern = os.path.join(REPO, path)
            if not (glob.glob(pattern) if "*" in path else os.path.exists(pattern)):
                missing.append(path)
    assert not missing


def functions_of(path):
    """Top-level function name -> source of a test file."""
    text = read(path)
    return {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef)}


def bad_input_rows():
    """(input, error classes, message, tests) of each row of the reliability page's table."""
    rows = []
    for line in read(os.path.join(REPO, "docs", "reliability.md")).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "tests/test_" in cells[3]:
            rows.append((cells[0], re.findall(r"`(\w+(?:Error|Exit))`", cells[1]),
                         cells[2].strip("`"),
                         re.findall(r"`(tests/test_\w+\.py)::(\w+)`", cells[3])))
    return rows


def joined_source():
    """Every .py file of domaingen/ and tools/, with implicitly concatenated string literals
    joined (``"a "\n    f"b"`` -> ``a b``), as the messages read once built."""
    paths = glob.glob(os.path.join(REPO, "domaingen", "**", "*.py"), recursive=True)
    paths += glob.glob(os.path.join(REPO, "tools", "*.py"))
    text = "\n".join(read(p) for p in paths)
    return re.sub(r"[\"']\s*\n\s*f?[\"']", "", text)


def test_the_bad_input_table_is_there():
    assert len(bad_input_rows()) >= 20


@pytest.mark.parametrize("row", bad_input_rows(), ids=lambda r: r[0][:50])
def test_each_bad_input_message_is_the_codes(row):
    """The message column is the code's text with each ``{...}`` written ``<...>``."""
    _, _, message, _ = row
    assert message, f"no message for {row[0]!r}"
    # Messages wholly built from placeholders (a library's reason after the file) check nothing.
    pieces = [p.strip() for p in re.split(r"<[^>]*>", message) if len(p.strip()) >= 6]
    source = joined_source()
    missing = [p for p in pieces if p not in source]
    assert not missing


@pytest.mark.parametrize("row", bad_input_rows(), ids=lambda r: r[0][:50])
def test_each_bad_input_row_names_tests_that_raise_its_error(row):
    _, errors, _, tests = row
    assert errors and tests
    for path, name in tests:
        source = functions_of(os.path.join(REPO, path)).get(name)
        assert source is not None, f"{path}::{name} does not exist"
        if "SystemExit" in errors and "tool_error(" in source:
            source += "SystemExit"  # tests/test_tools.py's tool_error asserts the tool's exit
        assert any(e in source for e in errors), f"{path}::{name} checks none of {errors}"
