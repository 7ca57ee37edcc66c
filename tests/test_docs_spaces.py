"""docs/adding-a-space.md's Python runs as written, in a fresh namespace."""

import re
from pathlib import Path

import pytest

from fashion.errors import ConfigError
from fashion.spaces.registry import space_names, unregister_space
from fashion.training.config import RunConfig

PAGE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-space.md"


@pytest.fixture
def page_spaces():
    """The names the page registers, forgotten after the test."""
    before = space_names()
    added = []
    yield added
    added += [name for name in space_names() if name not in before]
    for name in added:
        unregister_space(name)


def test_the_page_defines_registers_and_builds_a_space(page_spaces, capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert blocks, "the page has no ```python block"
    namespace = {"__name__": "__main__"}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    registered = [name for name in space_names() if name not in
                  ("mlp", "cnn", "vgg", "vgg_quick", "photo")]
    assert registered == ["wide_mlp"]
    assert re.fullmatch(r"wide_mlp: [\d,]+ weights with \{.*'units': \d+.*\}\n",
                        capsys.readouterr().out)
    # What the page says of it: not a deadline space.
    with pytest.raises(ConfigError, match="--budget needs --space vgg or vgg_quick"):
        RunConfig(space="wide_mlp", budget=15.0)
