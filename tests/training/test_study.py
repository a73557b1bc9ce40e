"""The class-imbalance study on the built-in sample: every strategy trained on the same cached features,
the Table-7 files written with the right content, and a second call reusing the finished runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import os

import pytest
from conftest import one_line_error, tiny_flags

from affect_keras.cli.study import main


def test_a_misspelt_study_split_is_refused_before_any_training(small_sample, tmp_path, capsys, monkeypatch):
    import affect_keras.training.study as study

    monkeypatch.setattr(study, "run_study", lambda *a, **k: pytest.fail("a strategy started"))
    with pytest.raises(SystemExit) as stop:
        main(
            [
                *tiny_flags(small_sample),
                "--epochs",
                "1",
                "--split",
                "tset",
                "--out",
                str(tmp_path / "study"),
            ]
        )
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "--split tset" in message and "val" in message
