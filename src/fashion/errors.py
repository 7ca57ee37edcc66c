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


class DistributeError(FashionError):
    """A chief that cannot serve, or a worker set up inconsistently with its chief."""
