"""A folder of labelled photos: class folders by id or label, the folders refused, the hold-out."""

import shutil

import numpy as np
import pytest
from conftest import labelled_photos

from fashion.errors import PhotoFolderError
from fashion.storage.photo_folder import class_id, hold_out, read_photo_folder


@pytest.mark.parametrize("name, expected", [
    ("0", 0), ("tshirt", 0), ("T-shirt_top", 0), ("t-shirt top", 0), ("T-SHIRTS", 0),
    ("trouser", 1), ("Trousers", 1), ("pullover", 2), ("dresses", 3), ("Coat", 4),
    ("sandal", 5), ("6", 6), ("sneakers", 7), ("bag", 8), ("ankle boot", 9), ("ankleboot", 9),
    ("Ankle_Boots", 9), ("hat", None), ("10", None), ("", None),
])
def test_class_folders_are_named_by_id_or_label(name, expected):
    assert class_id(name) == expected


def test_a_folder_named_by_labels_reads_like_one_named_by_ids(tmp_path):
    by_id = read_photo_folder(labelled_photos(tmp_path / "ids", per_class=2))
    names = {0: "T-shirt_top", 1: "trousers", 3: "Dress", 4: "coat", 6: "SHIRT"}
    by_label = read_photo_folder(labelled_photos(tmp_path / "labels", per_class=2, names=names))
    assert sorted(by_id.labels) == sorted(by_label.labels) == [0, 0, 1, 1, 3, 3, 4, 4, 6, 6]
    assert by_id.groups is None


def test_hidden_files_and_files_beside_the_class_folders_are_skipped(tmp_path):
    root = labelled_photos(tmp_path / "photos", per_class=2)
    (root / "README.md").write_text("my photos")
    (root / "0" / ".DS_Store").write_bytes(b"\0")
    (root / ".git").mkdir()
    assert len(read_photo_folder(root).files) == 10


def _refusal(path, message):
    with pytest.raises(PhotoFolderError, match=message) as caught:
        read_photo_folder(path)
    assert "\n" not in str(caught.value)


def test_each_bad_folder_is_refused_in_one_line_naming_what_to_fix(tmp_path):
    _refusal(tmp_path / "missing", "photo folder .*missing does not exist")
    root = labelled_photos(tmp_path / "photos", per_class=2)
    (root / "hats").mkdir()
    _refusal(root, r"hats is named by no class; name each class folder 0-9, or "
                   r"\"T-shirt/top\", \"Trouser\".*\"Ankle boot\" \(case, spaces and punctuation")
    shutil.rmtree(root / "hats")
    (root / "sandal").mkdir()
    _refusal(root, "class folder .*sandal holds no photos; add some, or remove the folder")
    shutil.rmtree(root / "sandal")
    (root / "3" / "notes.txt").write_text("not a photo")
    _refusal(root, r"3/notes.txt is not an image file; keep only photos \(.png, .jpg")
    only_one = tmp_path / "one"
    shutil.copytree(root / "1", only_one / "trouser")
    _refusal(only_one, r"holds photos of one class only \(Trouser\); add a folder of another")
    (tmp_path / "empty").mkdir()
    _refusal(tmp_path / "empty", "holds no class folders of photos; put the photos in one")


def test_without_groups_each_class_holds_out_its_share(tmp_path):
    folder = read_photo_folder(labelled_photos(tmp_path / "photos", per_class=5))
    train, held = hold_out(folder, 0.2, seed=1)
    assert sorted(folder.labels[held]) == [0, 1, 3, 4, 6]  # one of each class's five
    assert sorted([*train, *held]) == list(range(25))
    again, _ = hold_out(folder, 0.2, seed=1)
    np.testing.assert_array_equal(train, again)  # the seed decides
    assert not np.array_equal(train, hold_out(folder, 0.2, seed=2)[0])


@pytest.mark.parametrize("table, header", [("groups.csv", "file,group"),
                                           ("labels.csv", "file,class_id,sender_id")])
def test_a_group_is_held_out_whole(tmp_path, table, header):
    root = labelled_photos(tmp_path / "photos", per_class=4)
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.jpg"))
    # Photo i of every class comes from sender i: a room each.
    rows = [f"{f},{f.split('/')[0]},{f[-5]}" if table == "labels.csv" else f"{f},{f[-5]}"
            for f in files]
    (root / table).write_text("\n".join([header, *rows]) + "\n")
    folder = read_photo_folder(root)
    assert folder.groups is not None and len(set(folder.groups)) == 4
    for seed in range(3):
        train, held = hold_out(folder, 0.25, seed)
        groups = np.asarray(folder.groups)
        assert set(groups[train]).isdisjoint(groups[held]) and len(held)
    (root / "groups.csv").write_text("file,group\n" + "".join(f"{f},all\n" for f in files))
    with pytest.raises(PhotoFolderError, match="every photo of .* is in one group"):
        hold_out(read_photo_folder(root), 0.2, 0)
