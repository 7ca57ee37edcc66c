"""The photos of a `fashion adapt` run, read and split as the run split them."""

from __future__ import annotations

from fashion.inference.photos import read_photos
from fashion.storage.dataset import Splits
from fashion.storage.photo_folder import HOLDOUT_SEED, hold_out, read_photo_folder


def load_photo_splits(config) -> Splits:
    """The photos of a `fashion adapt` run, as it split them: its training photos, and the
    held-out ones as validation and test (the training watches them and chooses nothing on
    them). The same photos every time, from `config.photo_dir` and `photo_holdout` (whatever
    the seed: `photo_folder.HOLDOUT_SEED`).

    Raises:
        PhotoFolderError: the folder cannot be learned from (`read_photo_folder`).
        InputError: a photo cannot be read (named).
    """
    folder = read_photo_folder(config.photo_dir)
    train, held = hold_out(folder, config.photo_holdout, HOLDOUT_SEED)
    photos = read_photos(folder.files)
    return Splits("photos", photos[train], folder.labels[train], photos[held],
                  folder.labels[held], photos[held], folder.labels[held],
                  data_sha256={"photos (listing)": folder.listing_sha256()})

