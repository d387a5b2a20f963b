"""Ground-truth interval files: parsing, validation, cropping and id checks."""

import numpy as np
import pytest

from attngen_keras.data.errors import DataError
from attngen_keras.explain.ground_truth import ground_truth_mask, read_intervals


def test_csv_and_bed_intervals_become_a_mask(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text("id,start,end\na,2,5\na,8,9\nb,0,1\nzzz,0,3\n")
    mask = ground_truth_mask(csv, ["a", "b", "c"], [10, 10, 10])
    assert np.flatnonzero(mask[0]).tolist() == [2, 3, 4, 8] and np.flatnonzero(
        mask[1]
    ).tolist() == [0]
    assert not mask[2].any()  # no intervals: skipped by the localization metrics
    named = tmp_path / "named.csv"  # `name` is read as `id`, as in the training tables
    named.write_text("Name,start,end\na,2,5\n")
    assert read_intervals(named).values.tolist() == [["a", 2, 5]]
    bed = tmp_path / "gt.bed"
    bed.write_text("a\t2\t5\textra\n")
    assert read_intervals(bed).values.tolist() == [["a", 2, 5]]


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,start\na,1\n", "missing column"),
        (
            "name,from,to\na,1,2\n",
            r"missing column\(s\) \['start', 'end'\]; found \['name', 'from', 'to'\]",
        ),
        ("id,start,end\na,5,5\n", "line 2"),
        ("id,start,end\na,x,3\n", "line 2"),
        ("", "empty"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "gt.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        ground_truth_mask(path, ["a"], [10])


def test_intervals_past_the_end_duplicates_and_cropping(tmp_path):
    path = tmp_path / "gt.csv"
    path.write_text("id,start,end\na,8,14\nb,12,15\n")
    with pytest.raises(DataError, match=r"line 2: interval 8-14 runs past the sequence end"):
        ground_truth_mask(path, ["a", "b"], [10, 10])
    # cropped at the end (--crop left): coordinates hold, the tail is clipped away, with a warning
    with pytest.warns(UserWarning, match="1 interval clipped and 1 interval left out where they "
                      "run past their sequence's end"):  # fmt: skip
        clipped = ground_truth_mask(path, ["a", "b"], [10, 10], clip=True)
    assert np.flatnonzero(clipped[0]).tolist() == [8, 9] and not clipped[1].any()
    with pytest.raises(DataError, match="share the id 'a'"):
        ground_truth_mask(path, ["a", "a"], [10, 10])
    with pytest.raises(DataError, match="none of its ids match"):
        ground_truth_mask(path, ["x"], [10])


@pytest.mark.parametrize(
    "name, content, line",
    [
        # pandas skips the empty and blank lines: the row is still named by its file line
        ("gt.csv", "id,start,end\na,1,3\n\n  \nb,4,4\n", 5),
        ("gt.tsv", 'id\tstart\tend\n"a\nb"\t1\t3\n\nc\t9\t2\n', 5),
        ("gt.bed", "track name=planted\n# comment\n\na\t1\t3\nb\t4\tx\n", 5),
    ],
)
def test_errors_name_the_file_line_after_skipped_lines(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=f"line {line}: start"):
        read_intervals(path)


def test_bed_header_lines_are_skipped_and_short_rows_named(tmp_path):
    bed = tmp_path / "gt.bed"
    bed.write_text("browser position chr1\ntrack name=x\n#c\na 2 5\nb\t0\t1\tname\t0\t+\n")
    assert read_intervals(bed).values.tolist() == [["a", 2, 5], ["b", 0, 1]]
    # ids that merely begin with "track" or "browser" are ids
    bed.write_text("track_1\t2\t5\nbrowser7\t1\t3\n #x\t0\t1\n")
    assert read_intervals(bed).values.tolist() == [["track_1", 2, 5], ["browser7", 1, 3]]
    bed.write_text("a\t2\t5\nb\t3\n")
    with pytest.raises(DataError, match="line 2: 2 field"):
        read_intervals(bed)
    bed.write_text("# only a comment\n\n")
    with pytest.raises(DataError, match="empty file"):
        read_intervals(bed)
