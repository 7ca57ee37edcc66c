"""The one registry of search spaces, which config, plan, training, report and CLI all ask.

A space is a `fashion.spaces.base.SearchSpace` subclass in a module of its own, registered once:
the built-in ones in `_BUILT_IN` below, any other with `register_space`.

Importing this module does not import Keras (about 5 s on 2 cores), so the CLI lists the spaces
and a `RunConfig` is checked against them before Keras loads: a built-in space's module is
imported on first use, and the traits a config checks, `supports_deadline` and `input_shape`,
are stated beside its name (tests/test_spaces.py checks that each class says the same).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

from fashion.errors import ConfigError
from fashion.storage.classes import INPUT_SHAPE, PHOTO_SHAPE

if TYPE_CHECKING:
    from fashion.spaces.base import SearchSpace


class BuiltIn(NamedTuple):
    """Where a built-in space's class lives, whether it supports a deadline, and what its
    models take."""

    module: str
    class_name: str
    supports_deadline: bool
    input_shape: tuple[int, int, int] = INPUT_SHAPE


# The spaces that come with fashion, by name (`--space`): one registration each.
_BUILT_IN = {
    "mlp": BuiltIn("fashion.spaces.mlp", "MLPHyperModel", supports_deadline=False),
    "cnn": BuiltIn("fashion.spaces.cnn", "CNNHyperModel", supports_deadline=False),
    "vgg": BuiltIn("fashion.spaces.vgg", "VGGHyperModel", supports_deadline=True),
    "vgg_quick": BuiltIn("fashion.spaces.vgg", "QuickVGGHyperModel", supports_deadline=True),
    "photo": BuiltIn("fashion.spaces.photo", "PhotoHyperModel", supports_deadline=False,
                     input_shape=PHOTO_SHAPE),
}
# The spaces `register_space` added, in the order they came.
_registered: dict[str, type[SearchSpace]] = {}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Register a search space under its `name`, for `RunConfig(space=...)` and every reader.

    Usable as a class decorator. The registration lasts for the process: a run of the space
    must be started, resumed and reported from a program that registers it.

    Raises:
        ConfigError: `cls` is not a `SearchSpace` subclass, has no name or the name of a space
            already registered, or declares traits that contradict each other.
    """
    from fashion.spaces.base import SearchSpace  # imports Keras, as `cls` already did
    from fashion.spaces.compile_options import FAMILIES

    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise ConfigError(f"register_space takes a subclass of fashion.SearchSpace, got {cls!r}")
    name = cls.name
    if not (isinstance(name, str) and name):
        raise ConfigError(f"{cls.__qualname__} has no name; set its class attribute `name`, the "
                          "key a config chooses it by")
    if name in space_names():
        raise ConfigError(f"a space named {name!r} is already registered ({_origin(name)}); "
                          f"choose another name, or unregister_space({name!r}) first")
    if cls.family not in FAMILIES:
        raise ConfigError(f"{cls.__qualname__}.family is {cls.family!r}; choose one of "
                          f"{', '.join(FAMILIES)}")
    if tuple(cls.input_shape) not in (INPUT_SHAPE, PHOTO_SHAPE):
        raise ConfigError(f"{cls.__qualname__}.input_shape is {cls.input_shape!r}; choose "
                          f"{INPUT_SHAPE} (Fashion-MNIST) or {PHOTO_SHAPE} (photos)")
    if cls.supports_deadline and cls.batch_size is None:
        raise ConfigError(f"{cls.__qualname__} supports a deadline, so it needs a batch_size: a "
                          "budget's plan measures its speed at that size")
    _registered[name] = cls
    return cls


def unregister_space(name: str) -> None:
    """Forget a space `register_space` added (built-in spaces stay).

    Raises:
        ConfigError: no space of that name was registered.
    """
    if name not in _registered:
        raise ConfigError(f"no space named {name!r} was registered with register_space")
    del _registered[name]


def space_names() -> tuple[str, ...]:
    """The names a config may choose: the built-in spaces, then those registered."""
    return (*_BUILT_IN, *_registered)


def space_class(name: str) -> type[SearchSpace]:
    """The class of the space `name`, importing a built-in one on first use.

    Raises:
        ConfigError: no space of that name.
    """
    if name in _registered:
        return _registered[name]
    built_in = _built_in(name)
    return getattr(importlib.import_module(built_in.module), built_in.class_name)


def supports_deadline(name: str) -> bool:
    """Whether the space `name` supports a deadline (`SearchSpace.supports_deadline`), without
    importing a built-in space's module.

    Raises:
        ConfigError: no space of that name.
    """
    if name in _registered:
        return _registered[name].supports_deadline
    return _built_in(name).supports_deadline


def takes_photos(name: str) -> bool:
    """Whether the space `name` trains on photos (`fashion adapt`), not on the dataset's 28x28
    images, without importing a built-in space's module.

    Raises:
        ConfigError: no space of that name.
    """
    if name in _registered:
        return tuple(_registered[name].input_shape) == PHOTO_SHAPE
    return _built_in(name).input_shape == PHOTO_SHAPE


def deadline_space_names() -> tuple[str, ...]:
    """The spaces that support a deadline, for messages that name them."""
    return tuple(name for name in space_names() if supports_deadline(name))


def build_hypermodel(space: str, seed: int = 0, network: str | None = None,
                     precision: str | None = None,
                     augment_in_graph: bool = False) -> SearchSpace:
    """Return the space named `space`, seeded where it draws random numbers.

    `network`, `precision` (a Keras dtype policy; None keeps the space's own) and
    `augment_in_graph` shape the spaces that support a deadline; the others ignore them.

    Raises:
        ConfigError: an unknown space or network name.
    """
    return space_class(space)(seed=seed, network=network, precision=precision,
                              augment_in_graph=augment_in_graph)


def fixed_hyperparameters(space: str) -> dict:
    """The settings a space fixes by evidence instead of searching (for the report)."""
    return dict(space_class(space).fixed)


def hypermodel_for(config) -> SearchSpace:
    """The space a `RunConfig` trains, built with its settings."""
    return build_hypermodel(config.space, seed=config.seed, network=config.network,
                            precision=config.precision,
                            augment_in_graph=bool(config.augment_in_graph))


def _built_in(name: str) -> BuiltIn:
    if name not in _BUILT_IN:
        raise ConfigError(f"unknown space {name!r}; choose one of {', '.join(space_names())}")
    return _BUILT_IN[name]


def _origin(name: str) -> str:
    if name in _BUILT_IN:
        return "built in"
    cls = _registered[name]
    return f"by {cls.__module__}.{cls.__qualname__}"
