"""The docs: every ```python block of the site's pages runs as written (at tiny scale), the README
stays a short user's guide, and every page the site's navigation names exists.

`mkdocs build --strict` (the `docs` target's build) checks links and docstrings; it is not run
here.
"""

import re
from pathlib import Path

import keras
import pytest

import fashion
from fashion.training import config

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Pages whose python blocks are tested elsewhere: the search-space guide has its own test.
OWN_TESTS = {"adding-a-space.md"}
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
# What each page's blocks must print, beyond running without an error.
PRINTS = {
    "notebook.md": [
        r"test loss [\d.]+, accuracy 0\.\d{4}, macro F1 0\.\d{4}",
        r"\d+ trials; the best scored",
        r"\[('(" + "|".join(map(re.escape, fashion.CLASS_NAMES)) + r")',? ?){5}\]",
        r"seed \d+ 0\.\d{4}",  # the run read back: its preset, trials and test accuracy
        r"five\.npy\[4\] \S",  # the shipped model's answer for the fifth image
        r"plan for 60 minutes on ",
        r"True True 10\.0\.0\.1:8000",
    ],
}
# What each page's blocks must leave in the folder they run in.
WRITES = {"notebook.md": ["runs/notebook/report.html", "runs/notebook/model.keras"]}
README_LINES = 200
# A user's guide has no lab diary: issue numbers, clock times of runs, machine load, commits.
DIARY = re.compile(r"issue \d+|\d{2}:\d{2} UTC|load average|\bcommit [0-9a-f]{7,}\b|\br\d\b",
                   re.IGNORECASE)


def python_pages() -> list[str]:
    return sorted(page.name for page in DOCS.glob("*.md")
                  if page.name not in OWN_TESTS and PYTHON_BLOCK.search(page.read_text()))


def nav_pages() -> list[str]:
    """The Markdown files mkdocs.yml's nav names (`- Title: page.md`)."""
    return re.findall(r"^\s*- [^:\n]+:\s*(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(),
                      re.MULTILINE)


def test_the_python_pages_are_found():
    assert "notebook.md" in python_pages()
    assert set(PRINTS) | set(WRITES) <= set(python_pages())


@pytest.mark.parametrize("page", python_pages())
@pytest.mark.integration
def test_a_pages_python_blocks_run_in_order(page, data_dir, tmp_path, monkeypatch, capsys):
    text = (DOCS / page).read_text()
    full_size = config.config_from_preset

    def tiny(preset="default", **options):
        # 200 images a split and the data on disk; without a budget, 2-epoch trials and
        # training too (with one, the plan sets the epochs).
        made = full_size(preset, **{**options, "limit": 200, "data_dir": str(data_dir)})
        return made if made.budget is not None else made.replace(max_epochs=2, final_epochs=2)

    monkeypatch.setattr(config, "config_from_preset", tiny)
    monkeypatch.chdir(tmp_path)
    keras.config.set_max_steps_per_epoch(2)
    namespace = {"__name__": "__docs__"}
    try:
        for block in PYTHON_BLOCK.finditer(text):
            line = text.count("\n", 0, block.start(1))  # tracebacks point into the page
            exec(compile("\n" * line + block.group(1), str(DOCS / page), "exec"), namespace)
    finally:
        keras.config.set_max_steps_per_epoch(None)
    out = capsys.readouterr().out
    for expected in PRINTS.get(page, []):
        assert re.search(expected, out), f"{page} did not print {expected!r}:\n{out}"
    for written in WRITES.get(page, []):
        assert (tmp_path / written).is_file()


def test_the_readme_is_a_short_users_guide():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LINES
    assert not DIARY.findall(readme)
    assert "make run" in readme and "make test" in readme and "FASHION_MNIST_DIR" in readme


def test_every_page_in_the_nav_exists_and_every_page_is_in_the_nav():
    named = nav_pages()
    assert "index.md" in named and "reference.md" in named
    assert [page for page in named if not (DOCS / page).is_file()] == []
    assert sorted(page.name for page in DOCS.glob("*.md")) == sorted(named)


def test_the_readme_links_only_to_pages_that_exist():
    readme = (REPO / "README.md").read_text()
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked
    assert [link for link in linked if not (REPO / link).is_file()] == []


def test_the_api_names_resolve_and_unknown_ones_do_not():
    for name in fashion.API:
        assert getattr(fashion, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fashion.nope  # noqa: B018
