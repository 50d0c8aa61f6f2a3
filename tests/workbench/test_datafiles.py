import numpy as np
import pytest

from flowforge.workbench.datafiles import DataFileError, read_points, write_points


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_points_round_trip_exactly(tmp_path, suffix):
    points = np.random.default_rng(0).normal(size=(20, 3)) * 1e3
    path = write_points(tmp_path / f"p{suffix}", points)
    np.testing.assert_array_equal(read_points(path, 3), points)


@pytest.mark.parametrize(
    "text", ["1,2\n3,4\n", "a,b\n1,2\n3,4\n", "\n1, 2\n3 ,4\n"], ids=["plain", "header", "spaces"]
)
def test_csv_with_or_without_a_header(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_text(text)
    np.testing.assert_array_equal(read_points(path, 2), [[1, 2], [3, 4]])


def test_a_single_row_and_integers_are_points(tmp_path):
    np.save(tmp_path / "one.npy", np.array([[1, 2]], dtype=np.int32))
    assert read_points(tmp_path / "one.npy", 2).dtype == np.float64


def test_a_1d_array_is_not_a_table_of_points(tmp_path):
    np.save(tmp_path / "flat.npy", np.arange(4.0))
    with pytest.raises(DataFileError, match=r"expected 2 columns .* got shape \(4,\)"):
        read_points(tmp_path / "flat.npy", 2)


def test_writing_refuses_to_overwrite_or_to_invent_folders(tmp_path):
    path = write_points(tmp_path / "p.npy", np.zeros((2, 2)))
    with pytest.raises(DataFileError, match="already exists"):
        write_points(path, np.ones((2, 2)))
    assert np.load(path).sum() == 0
    with pytest.raises(DataFileError, match="does not exist"):
        write_points(tmp_path / "no" / "p.csv", np.zeros((2, 2)))
