"""A folder of labelled photos, as `keras.utils.image_dataset_from_directory` lays one out: one
sub-folder per class, named by Fashion-MNIST class id or label; and the photos it holds out."""

from __future__ import annotations

import csv
import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion.errors import PhotoFolderError
from fashion.storage.classes import CLASS_NAMES

# The suffixes of the image files fashion reads (Pillow's PNG, JPEG, BMP, GIF, WebP, TIFF).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Files beside the class folders that say which photos belong together (one sender, one room):
# `groups.csv` (columns file, group), else a `labels.csv` with a `sender_id` column (the layout
# of shared/data/clothing-photos). Paths in them are relative to the folder.
GROUPS_FILE = "groups.csv"
LABELS_FILE = "labels.csv"
SENDER_COLUMN = "sender_id"
# The seed of `fashion adapt`'s hold-out, whatever the run's seed: runs of other seeds are
# judged on the same photos, and models of one folder can be compared or averaged.
HOLDOUT_SEED = 42


def _normalised(name: str) -> str:
    """Lower case, letters and digits only: "T-shirt_top" -> "tshirttop"."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


# Folder name (normalised) -> class id: the id, the label, the label in the plural, and
# "tshirt" (the label without "/top").
CLASS_IDS = {**{str(i): i for i in range(len(CLASS_NAMES))},
             **{_normalised(name): i for i, name in enumerate(CLASS_NAMES)},
             **{_normalised(name) + "s": i for i, name in enumerate(CLASS_NAMES)},
             "dresses": 3, "tshirt": 0, "tshirts": 0}
ACCEPTED_NAMES = ("0-9, or " + ", ".join(f'"{name}"' for name in CLASS_NAMES)
                  + " (case, spaces and punctuation ignored)")


@dataclass(frozen=True)
class PhotoFolder:
    """The photos of a folder, sorted by path, with their class ids and groups."""

    root: Path
    files: tuple[Path, ...]
    labels: np.ndarray  # int64 class ids
    groups: tuple[str, ...] | None  # one per photo, from groups.csv or labels.csv; None: none

    def listing_sha256(self) -> str:
        """A checksum of what the folder holds: each photo's path, class and size."""
        digest = hashlib.sha256()
        for path, label in zip(self.files, self.labels, strict=True):
            digest.update(f"{path.relative_to(self.root)}\t{label}\t{path.stat().st_size}\n"
                          .encode())
        return digest.hexdigest()


def class_id(folder_name: str) -> int | None:
    """The class a folder named `folder_name` holds, or None for a name no class has."""
    return CLASS_IDS.get(_normalised(folder_name))


def read_photo_folder(path: str | Path) -> PhotoFolder:
    """List the photos of a labelled folder, refusing one that cannot be learned from.

    Hidden files and folders (.DS_Store, .git) are skipped, as are files beside the class
    folders (a README, groups.csv). Photos in a class folder's sub-folders count for its class.

    Raises:
        PhotoFolderError: in one line naming what to fix: a missing folder, a sub-folder named
            by no class, an empty class folder, a non-image file, no photos, or one class only.
    """
    root = Path(path)
    if not root.is_dir():
        raise PhotoFolderError(f"photo folder {root} does not exist; pass a folder holding one "
                               "sub-folder of photos per class")
    files, labels = [], []
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p.name))
    for folder in class_folders:
        label = class_id(folder.name)
        if label is None:
            raise PhotoFolderError(f"{folder} is named by no class; name each class folder "
                                   f"{ACCEPTED_NAMES}")
        photos = sorted(p for p in folder.rglob("*") if p.is_file()
                        and not any(_hidden(part) for part in p.relative_to(folder).parts))
        if not photos:
            raise PhotoFolderError(f"class folder {folder} holds no photos; add some, or remove "
                                   "the folder")
        for photo in photos:
            if photo.suffix.lower() not in IMAGE_SUFFIXES:
                raise PhotoFolderError(f"{photo} is not an image file; keep only photos "
                                       f"({', '.join(IMAGE_SUFFIXES)}) in the class folders")
        files += photos
        labels += [label] * len(photos)
    if not files:
        raise PhotoFolderError(f"{root} holds no class folders of photos; put the photos in one "
                               f"sub-folder per class, named {ACCEPTED_NAMES}")
    if len(set(labels)) < 2:
        raise PhotoFolderError(f"{root} holds photos of one class only "
                               f"({CLASS_NAMES[labels[0]]}); add a folder of another class")
    return PhotoFolder(root, tuple(files), np.array(labels, np.int64), _read_groups(root, files))


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _read_groups(root: Path, files: list[Path]) -> tuple[str, ...] | None:
    """Each photo's group from groups.csv or labels.csv; a photo they omit is a group alone."""
    if (root / GROUPS_FILE).is_file():
        table, column = root / GROUPS_FILE, "group"
    elif (root / LABELS_FILE).is_file():
        table, column = root / LABELS_FILE, SENDER_COLUMN
    else:
        return None
    try:
        with open(table, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PhotoFolderError(f"{table} cannot be read as CSV ({e}); fix or remove it") from e
    if not rows or "file" not in rows[0] or column not in rows[0]:
        if table.name == LABELS_FILE:
            return None  # labels without senders: nothing to group by
        raise PhotoFolderError(f"{table} needs the columns file,group; fix or remove it")
    group_of = {Path(row["file"]).as_posix(): row[column] for row in rows}
    return tuple(group_of.get(path.relative_to(root).as_posix(), f"photo:{path}")
                 for path in files)


def hold_out(folder: PhotoFolder, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the photos into training and held-out rows, about `fraction` held out.

    With groups, every group lies on one side (photos of one sender share a room, and a model
    tested on that room would be judged on what it memorised): scikit-learn's
    `StratifiedGroupKFold` keeps each class's share where the groups allow, its first fold
    held out; with fewer groups than its folds, `GroupShuffleSplit`. Without groups, each
    class holds out its share, rounded, at least one photo of every class of two or more
    (scikit-learn's stratified split refuses the few photos a class may have).

    Raises:
        PhotoFolderError: too few photos or groups to hold any out.
    """
    labels, rows = folder.labels, np.arange(len(folder.labels))
    if folder.groups is None:
        rng = np.random.default_rng(seed)
        held = []
        for label in np.unique(labels):
            members = rng.permutation(rows[labels == label])
            if len(members) >= 2:
                held += list(members[:min(max(1, round(fraction * len(members))),
                                          len(members) - 1)])
        if not held:
            raise PhotoFolderError(f"{folder.root} has one photo per class, none to hold out "
                                   "for evaluation; add a second photo to some class")
        held = np.sort(np.array(held))
        return np.setdiff1d(rows, held), held
    groups = np.asarray(folder.groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise PhotoFolderError(f"every photo of {folder.root} is in one group; a group is held "
                               "out whole, so give the photos two or more groups")
    # Imported here: `fashion predict` reads IMAGE_SUFFIXES from this module and starts faster
    # without scikit-learn's model selection.
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    folds = max(2, round(1 / fraction))
    if n_groups >= folds:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = GroupShuffleSplit(1, test_size=fraction, random_state=seed)
    with warnings.catch_warnings():
        # A class with fewer photos than folds is expected in a user's folder: it is held out
        # where its groups fall, which is what the split promises.
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        train, held = next(splitter.split(rows, labels, groups))
    return np.sort(train), np.sort(held)
