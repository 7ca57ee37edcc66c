import gzip
import shutil
import struct

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from fashion.errors import DataError
from fashion.storage.dataset import (
    SHA256,
    check_local_copy,
    class_counts,
    load_fashion_mnist,
    one_hot,
    split_data,
)


def test_loader_reads_the_real_files(raw_arrays):
    (x_train, y_train), (x_test, y_test) = raw_arrays
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert (x_train.astype(np.float64) / 255).mean() == pytest.approx(0.2860, abs=5e-5)
    assert (x_train.astype(np.float64) / 255).std() == pytest.approx(0.3530, abs=5e-5)


def test_load_returns_the_published_checksums(data_dir):
    _, checksums = load_fashion_mnist(data_dir)
    assert checksums == SHA256


def test_seed_split_is_the_notebooks(raw_arrays):
    splits = split_data(raw_arrays, "seed")
    assert splits.sizes() == {"train": 60000, "val": 6000, "test": 4000}
    assert class_counts(splits.y_val) == [600] * 10
    assert class_counts(splits.y_test) == [400] * 10
    _, (x_test, y_test) = raw_arrays
    x_val, x_te, y_val, y_te = train_test_split(x_test, y_test, test_size=0.4, random_state=42,
                                                stratify=y_test)
    np.testing.assert_array_equal(splits.y_val, y_val)
    np.testing.assert_array_equal(splits.x_test[..., 0], x_te / np.float32(255))


def test_standard_split_keeps_all_test_images_and_carves_validation_from_train(raw_arrays):
    splits = split_data(raw_arrays, "standard", seed=0)
    assert splits.sizes() == {"train": 54000, "val": 6000, "test": 10000}
    assert class_counts(splits.y_val) == [600] * 10
    assert class_counts(splits.y_test) == [1000] * 10


def test_images_are_scaled_float32_with_a_channel(raw_arrays):
    splits = split_data(raw_arrays, "seed", limit=100)
    assert splits.x_train.shape == (100, 28, 28, 1) and splits.x_train.dtype == np.float32
    assert 0.0 == splits.x_train.min() and splits.x_train.max() == 1.0
    assert class_counts(splits.y_train) == [10] * 10


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0])).argmax(axis=1), [2, 0])
    assert one_hot(np.array([9])).shape == (1, 10)


# --- bad local copies: each names the file and the fix ---

@pytest.fixture
def copy_of_data(data_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(data_dir, folder)
    return folder


def _write_idx(path, header, payload=b""):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(f">{len(header)}I", *header) + payload)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        check_local_copy(tmp_path / "nowhere")


def test_missing_file_is_named(copy_of_data):
    (copy_of_data / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is missing"):
        check_local_copy(copy_of_data)


def test_checksum_mismatch_names_file_expected_and_actual(copy_of_data):
    path = copy_of_data / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw, compresslevel=1))  # same data, other bytes
    with pytest.raises(DataError, match=f"t10k-labels-idx1-ubyte.gz has SHA-256 .* expected "
                                        f"{SHA256['t10k-labels-idx1-ubyte.gz']}"):
        check_local_copy(copy_of_data)


def test_truncated_file_is_refused(copy_of_data):
    path = copy_of_data / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated, damaged or not a gzip file"):
        check_local_copy(copy_of_data)


def test_flipped_byte_is_refused_without_a_traceback(copy_of_data):
    path = copy_of_data / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the deflate stream: zlib.error if decompressed
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is truncated, damaged"):
        check_local_copy(copy_of_data)


def test_original_files_are_verified_without_decompressing(data_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decompressed a file whose checksum already proved it")

    monkeypatch.setattr(gzip, "open", refuse)
    assert check_local_copy(data_dir) == SHA256


def test_non_gzip_file_is_refused(copy_of_data):
    (copy_of_data / "train-images-idx3-ubyte.gz").write_text("not a gzip file")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is truncated, damaged or not"):
        check_local_copy(copy_of_data)


def test_wrong_idx_magic_is_refused(copy_of_data):
    _write_idx(copy_of_data / "t10k-labels-idx1-ubyte.gz", (2051, 10000), bytes(10000))
    with pytest.raises(DataError, match="IDX magic \\(2051,\\), expected 2049"):
        check_local_copy(copy_of_data)


def test_wrong_idx_shape_is_refused(copy_of_data):
    _write_idx(copy_of_data / "t10k-images-idx3-ubyte.gz", (2051, 10, 28, 28), bytes(10 * 784))
    with pytest.raises(DataError, match="IDX shape \\(10, 28, 28\\).*expected shape "
                                        "\\(10000, 28, 28\\)"):
        check_local_copy(copy_of_data)
