"""Each source on a fixture in its own layout: what it keeps, what it skips and why."""

import math
from collections import Counter

import pandas as pd
import pytest
from conftest import FERPLUS, face_image

from affect_keras.data.records import Record, Skipped
from affect_keras.data.sources import affectnet, ferplus, folders


def split_items(items):
    items = list(items)
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Skipped)]


def test_original_release_reads_both_lists_and_reports_bad_rows(affectnet_original):
    assert affectnet.detect_release(affectnet_original) == "original"
    records, skipped = split_items(affectnet.read(affectnet_original))
    by_rel = {r.rel: r for r in records}
    # validation.csv has no header: its first row is data, and it becomes the test split
    assert sorted(r.rel for r in records if r.split == "test") == ["1/val0.jpg", "1/val1.jpg", "1/val2.jpg"]
    assert by_rel["1/good.jpg"].box == (10, 10, 60, 60) and by_rel["1/good.jpg"].valence == 0.5
    assert math.isnan(by_rel["2/noaffect.jpg"].valence) and math.isnan(by_rel["2/noaffect.jpg"].arousal)
    assert by_rel["2/uncertain.jpg"].code == 9  # the label scheme decides, not the source
    reasons = {s.rel: s.reason for s in skipped}
    assert reasons["../outside.jpg"] == "path outside the dataset root"
    assert reasons["training.csv:12"].startswith("malformed row (4 columns")
    assert reasons["1/good.jpg"].startswith("malformed row")  # expression "happy"
    # 12 training rows, 3 refused by the source (the rest fail later, at decoding) + 3 validation rows
    assert len(records) == 9 + 3 and len(skipped) == 3


def test_newer_release(affectnet_newer):
    assert affectnet.detect_release(affectnet_newer) == "newer"
    records, skipped = split_items(affectnet.read(affectnet_newer))
    assert Counter(r.split for r in records) == {"train": 3, "test": 2}
    assert {r.rel: r.code for r in records}["val_set/images/11.jpg"] == 3
    assert math.isnan({r.rel: r for r in records}["train_set/images/2.jpg"].valence)
    assert [(s.rel, s.reason) for s in skipped] == [("train_set/images/3.jpg", "missing annotation 3_aro.npy")]


def test_affectnet_root_of_neither_release_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither Manually_Annotated_file_lists"):
        list(affectnet.read(tmp_path))


@pytest.mark.parametrize(
    "votes, expected",
    [
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], None),  # 4 of 9 after dropping the single vote
        ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),  # 6 of 8: neutral
        ([0, 0, 0, 0, 0, 0, 0, 3, 1, 0], 7),  # contempt, the lone unknown vote dropped
        ([0, 0, 0, 0, 0, 0, 0, 0, 8, 2], 9),  # unknown wins: outside every 8-class scheme
        ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),  # every vote an outlier
        ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None),  # a tie is not more than half
    ],
)
def test_ferplus_majority_rule(votes, expected):
    assert ferplus.majority_code(dict(zip(ferplus.VOTE_CODES, votes))) == expected


def test_ferplus_rows(tmp_path):
    folder = tmp_path / "FER2013Train"
    folder.mkdir()
    face_image(size=(48, 48), mode="L").save(folder / "fer0.png")
    (folder / "label.csv").write_text(
        'fer0.png,"(0, 0, 48, 48)",0,9,1,0,0,0,0,0,0,0\n'
        'fer1.png,"(0, 0, 48, 48)",4,0,0,1,3,2,0,0,0,0\n'
        'fer2.png,"(0, 0, 48, 48)",x,0\n'
    )
    records, skipped = split_items(ferplus.read(tmp_path))
    assert [(r.rel, r.code, r.box) for r in records] == [("FER2013Train/fer0.png", 1, (0, 0, 48, 48))]
    assert records[0].votes[1] == 9 and records[0].votes[3] == 1
    assert [s.reason for s in skipped] == ["no majority label (FER+ rule)", "malformed row (4 columns, expected 12)"]


@pytest.mark.skipif(not (FERPLUS / "FER2013Train/label.csv").is_file(), reason="FER+ data not beside the repo")
def test_ferplus_majority_counts_match_its_readme():
    records, _ = split_items(ferplus.read(FERPLUS))
    emotions = [r for r in records if r.code in ferplus.EMOTION_CODES]
    assert Counter(r.split for r in emotions) == {"train": 25045, "val": 3191}
    train = Counter(r.code for r in emotions if r.split == "train")
    # anger, contempt, disgust, fear, happiness, neutral, sadness, surprise as in the README
    assert [train[c] for c in (6, 7, 5, 4, 1, 0, 2, 3)] == [2098, 120, 116, 536, 7284, 8733, 3022, 3136]


def test_folders_flat_tree_with_class_map(tmp_path):
    for name in ("happiness", "Angry", "joy"):
        (tmp_path / name).mkdir()
        face_image().save(tmp_path / name / "a.png")
    (tmp_path / "Angry" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no known expression .*: joy"):
        list(folders.read(tmp_path))
    records, skipped = split_items(folders.read(tmp_path, {"joy": "Happy"}))
    assert sorted((r.rel, r.code, r.split) for r in records) == [
        ("Angry/a.png", 6, "train"),
        ("happiness/a.png", 1, "train"),
        ("joy/a.png", 1, "train"),
    ]
    assert [(s.rel, s.reason) for s in skipped] == [("Angry/notes.txt", "not an image file (.txt)")]


def test_folders_tree_with_its_own_splits(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "Sad").mkdir(parents=True)
        face_image().save(tmp_path / split / "Sad" / "a.jpg")
    records, _ = split_items(folders.read(tmp_path))
    assert sorted(r.split for r in records) == ["test", "train"]


def test_affectnet_csv_with_a_byte_order_mark(affectnet_original):
    """Case 8: a CSV saved with a UTF-8 BOM had its header counted as a malformed row."""
    lists = affectnet_original / "Manually_Annotated_file_lists" / "training.csv"
    lists.write_bytes(b"\xef\xbb\xbf" + lists.read_bytes())
    items = list(affectnet.read(affectnet_original))
    header = [i for i in items if isinstance(i, Skipped) and "training.csv:1" == i.rel]
    assert not header, header
    assert len([i for i in items if isinstance(i, Skipped)]) == 3  # as without the BOM


def test_a_symbolic_link_out_of_the_root_is_skipped_with_its_reason(tmp_path):
    """Case 4: a link inside --root pointing outside it was followed."""
    from conftest import face_image

    from affect_keras.data.sources import folders

    outside = tmp_path / "private.jpg"
    face_image().save(outside)
    root = tmp_path / "tree"
    (root / "happy").mkdir(parents=True)
    face_image(seed=1).save(root / "happy" / "own.jpg")
    (root / "happy" / "link.jpg").symlink_to(outside)
    items = list(folders.read(root))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.rel, s.reason) for s in skipped] == [("happy/link.jpg", "path outside the dataset root (symbolic link)")]
    assert [i.rel for i in items if not isinstance(i, Skipped)] == ["happy/own.jpg"]


@pytest.mark.parametrize(
    "labels, columns",
    [
        ("affectnet11", {"vote_Happy": 3, "vote_Uncertain": 6, "vote_NonFace": 1}),
        ("affectnet7-merge", {"vote_Happy": 3, "vote_Neutral": 7}),
        ("affectnet8", None),
    ],
)
def test_fer_plus_uncertain_votes_reach_the_manifest_where_the_scheme_has_the_class(tmp_path, labels, columns):
    """The source hands over votes per code; prepare maps them through the label scheme and nothing else:
    under affectnet11 FER+'s `unknown` votes are vote_Uncertain (they were dropped), under
    affectnet7-merge they count as Neutral, and under affectnet8 a face whose majority is Uncertain is left
    out with its reason."""
    from conftest import face_image

    from affect_keras.data.prepare import PrepareConfig, prepare

    folder = tmp_path / "fer" / "FER2013Train"
    folder.mkdir(parents=True)
    face_image(size=(48, 48), mode="L").save(folder / "fer0.png")
    # neutral happiness surprise sadness anger disgust fear contempt unknown NF
    (folder / "label.csv").write_text('fer0.png,"(0, 0, 48, 48)",0,3,0,0,0,0,0,0,6,1\n')
    out = tmp_path / "out"
    prepare(PrepareConfig(source="ferplus", root=tmp_path / "fer", out=out, size=48, labels=labels, test_fraction=0.0))
    manifest = pd.read_csv(out / "train.csv")
    if columns is None:
        assert manifest.empty and "no majority" not in (out / "skipped.csv").read_text()
        assert "Uncertain" in (out / "skipped.csv").read_text()
        return
    row = manifest.iloc[0]
    votes = {c: int(row[c]) for c in manifest.columns if c.startswith("vote_") and row[c]}
    assert votes == columns
