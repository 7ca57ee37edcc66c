"""Files written whole or not at all, and read back naming the command that makes them.

Writes are atomic (a temporary file, then a rename), so a kill never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from pathlib import Path

from fashion.errors import RunDirError

# Free space below which no trial or training starts: h5py, which writes Keras's checkpoints,
# crashes the whole process (a segmentation fault) when the disk fills mid-write.
MIN_FREE_BYTES = 64 * 2**20


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` via a temporary file beside it, so a crash never leaves half a file.

    The temporary file is created with mode 0o666 and the kernel applies the umask, as it does
    for `open`: the process umask is never read or changed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w") as f:
            f.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path, made_by: str = "fashion run"):
    """Read a JSON artefact, naming the command that makes it when it is missing or corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise RunDirError(f"{path} is missing; `{made_by}` writes it") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is corrupt ({e}); rerun `{made_by}` to write it again") from e


def check_free_space(folder: str | os.PathLike, needed: int = MIN_FREE_BYTES) -> None:
    """Refuse to start work that writes checkpoints on a nearly full disk."""
    if "://" in str(folder):
        return  # a remote store: no local disk to fill
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise RunDirError(f"only {free / 2**20:.0f} MiB free on the disk of {folder}, under the "
                          f"{needed / 2**20:.0f} MiB a run needs; free some space (then rerun to "
                          "resume) or choose another --out")


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """Write Keras's history as CSV, one row per epoch."""
    names = sorted(history)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *names])
    for epoch, values in enumerate(zip(*(history[n] for n in names), strict=True), start=1):
        writer.writerow([epoch, *values])
    write_atomic(path, out.getvalue())


def read_history(path: Path) -> dict[str, list[float]]:
    """Read `history.csv` back into metric name -> one value per epoch."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {name: [float(row[name]) for row in rows] for name in rows[0] if name != "epoch"}
    except FileNotFoundError as e:
        raise RunDirError(f"{path} is missing; `fashion run` writes it") from e
    except (IndexError, KeyError, ValueError, TypeError, csv.Error) as e:
        raise RunDirError(f"{path} is corrupt ({e}); rerun `fashion run` to write it again") from e
