"""The package's layers: imports go one way (the import-linter contract), and no cycles."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root / "src"), "PATH": ""},
                          timeout=120)


def test_the_layers_contract_is_kept():
    done = _lint_imports(REPO)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_an_import_that_goes_up_a_layer_breaks_the_contract(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(SRC / "fashion", tmp_path / "src" / "fashion",
                    ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    lowest = tmp_path / "src" / "fashion" / "storage" / "files.py"
    lowest.write_text(lowest.read_text() + "\nfrom fashion.cli import main  # noqa: E402\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "fashion.storage.files -> fashion.cli" in done.stdout


def _cycles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan), imports inside
    functions included: grimp reads every import statement."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while not component or module not in component:
                component.add(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others():
    assert _cycles(grimp.build_graph("fashion")) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph) == [{"a", "b", "c"}]


@pytest.mark.parametrize("layer", ["storage", "spaces", "training", "tuning", "runs",
                                   "inference", "evaluation", "workflow", "service", "cli"])
def test_each_layer_says_what_it_is_for(layer):
    package = __import__(f"fashion.{layer}", fromlist=["_"])
    assert package.__doc__ and package.__doc__.strip(), f"fashion.{layer} has no docstring"
