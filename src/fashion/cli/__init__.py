"""The `fashion` command: parse, build the config, call the library, print a summary."""

from __future__ import annotations

import argparse
import errno
import os
import sys

import fashion
from fashion.errors import FashionError

BACKENDS = ("tensorflow", "jax", "torch")
# Errors of the machine the user can fix: disk full, quota, read-only or forbidden folder.
USER_FIXABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out
    try:
        return args.handler(args) or 0
    except FashionError as e:
        print(f"fashion: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # a full disk, a read-only or forbidden folder, met mid-run
        if e.errno not in USER_FIXABLE_ERRNOS:
            raise
        where = f" writing {e.filename}" if e.filename else ""
        print(f"fashion: error: {e.strerror}{where}; free space or choose a writable --out, then "
              "rerun the same command to resume", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        backend = (e.name or "").split(".")[0]
        if backend not in BACKENDS:
            raise
        print(f"fashion: error: Keras's backend {backend} is not installed; install one with "
              "pip install 'fashion[tensorflow]' (or [jax], [torch]) and pick it with "
              "KERAS_BACKEND", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`fashion trials --json | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\nfashion: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error of `fashion`."""

    def error(self, message):
        self.exit(2, f"fashion: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    from fashion.cli import model_commands, photo_commands, run_commands

    parser = _Parser(prog="fashion", description=fashion.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fashion {fashion.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_commands.add_commands(commands)
    photo_commands.add_commands(commands)
    model_commands.add_commands(commands)
    return parser
