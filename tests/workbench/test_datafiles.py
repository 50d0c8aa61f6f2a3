import numpy as np
import pytest

from flowforge.workbench.datafiles import MAX_POINTS_BYTES, DataFileError, read_points, write_points
from tests.workbench import hostile


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


# --- issue 15 (6, 10): checked before reading; what a points file must not do -----------


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_hostile_points_files_are_refused_before_reading(tmp_path, suffix, kind):
    path = hostile.make(kind, tmp_path / f"p{suffix}", MAX_POINTS_BYTES + 1)
    outcome = hostile.within(30, lambda: read_points(path, 2))
    assert isinstance(outcome, DataFileError), repr(outcome)
    assert hostile.KINDS[kind] in str(outcome) and str(path) in str(outcome)
    assert "\n" not in str(outcome)


def test_an_npz_named_npy_is_a_one_line_error(tmp_path):
    path = tmp_path / "p.npy"
    with open(path, "wb") as file:
        np.savez(file, a=np.zeros((3, 2)))
    with pytest.raises(DataFileError, match=r"not a .npy array \(a zip archive \(an .npz file\?\)"):
        read_points(path, 2)


def test_a_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n")
    np.testing.assert_array_equal(read_points(path, 2), [[1, 2], [3, 4]])
    path.write_bytes(b"\xef\xbb\xbfx0,x1\n1,2\n")
    np.testing.assert_array_equal(read_points(path, 2), [[1, 2]])


def test_a_header_after_blank_lines_is_skipped(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\nx0,x1\n1,2\n")
    np.testing.assert_array_equal(read_points(path, 2), [[1, 2]])


@pytest.mark.parametrize(
    "shape, fortran", [((3, 2), False), ((3, 2), True), ((0, 2), False)], ids=str
)
def test_npy_files_of_every_layout_read_as_numpy_reads_them(tmp_path, shape, fortran):
    array = np.arange(np.prod(shape), dtype=">f4").reshape(shape)
    array = np.asfortranarray(array) if fortran else array
    path = tmp_path / "p.npy"
    np.save(path, array)
    if array.size == 0:
        with pytest.raises(DataFileError, match="has no points"):
            read_points(path, 2)
    else:
        np.testing.assert_array_equal(read_points(path, 2), np.load(path))


def test_an_npy_header_that_lies_about_its_shape_is_refused_without_allocating(tmp_path):
    path = tmp_path / "p.npy"
    with open(path, "wb") as file:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**15, 2)}
        np.lib.format.write_array_header_1_0(file, header)
        file.write(np.zeros((3, 2)).tobytes())
    with pytest.raises(
        DataFileError, match=r"truncated or damaged .* shape \(1000000000000000, 2\)"
    ):
        read_points(path, 2)
