"""The errors `fashion` raises for bad input; the CLI prints them as one line and exits non-zero."""


class FashionError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""

    exit_code = 1


class ConfigError(FashionError):
    """An absurd or unknown option; exits 2 like argparse's own usage errors."""

    exit_code = 2


class DataError(FashionError):
    """Missing, corrupt or unreachable Fashion-MNIST files."""


class RunDirError(FashionError):
    """A run directory that is missing files, or would be overwritten."""


class ModelError(FashionError):
    """A model file that is not a Keras model, does not fit Fashion-MNIST, or is unsafe to load."""


class PhotoFolderError(FashionError):
    """A folder of labelled photos that `fashion adapt` cannot learn from."""


class InputError(FashionError):
    """An input to predict on that cannot be scored; subclasses say why (the service maps them
    to HTTP statuses)."""


class EmptyInputError(InputError):
    """A file of zero bytes."""


class UnsupportedInputError(InputError):
    """Not an image at all, or an image format (or array shape) `fashion` does not read."""


class CorruptInputError(InputError):
    """An image whose header reads but whose data is truncated or damaged."""


class InputTooLargeError(InputError):
    """Over the byte limit, or over the pixel limit (a decompression bomb)."""


class SearchError(FashionError):
    """A search that ended without a usable trial."""


class DistributeError(FashionError):
    """A chief that cannot serve, or a worker set up inconsistently with its chief."""


class DependencyError(FashionError):
    """An installed library outside the versions `fashion` was tested with."""
