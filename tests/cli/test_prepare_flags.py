"""prepare_dataset.py as users run it: flags, config files, errors on one line."""

import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from affect_keras.cli.prepare import main


def test_bad_value_is_one_line_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--val-fraction", "1.5"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--val-fraction" in error and "[0, 1)" in error


def test_unparsable_value_and_missing_root(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--size", "big"])
    assert "argument --size: invalid int value: 'big'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--source", "ferplus"])
    assert "argument --root is required for --source ferplus" in capsys.readouterr().err


def test_config_file_sets_defaults_and_flags_override(tmp_path, capsys):
    config = tmp_path / "prep.yaml"
    config.write_text(
        yaml.safe_dump({"source": "sample", "count": 40, "size": 20, "val-fraction": 0.5, "out": str(tmp_path / "a")})
    )
    assert main(["--config", str(config), "--size", "24"]) == 0
    saved = yaml.safe_load((tmp_path / "a/prepare_config.yaml").read_text())
    assert (saved["count"], saved["size"], saved["val_fraction"]) == (40, 24, 0.5)
    # the saved config re-runs the same preparation
    assert main(["--config", str(tmp_path / "a/prepare_config.yaml")]) == 0
    assert "0 images written" in capsys.readouterr().out


def test_unknown_config_key_is_named(tmp_path, capsys):
    config = tmp_path / "prep.yaml"
    config.write_text("sizes: 3\n")
    with pytest.raises(SystemExit):
        main(["--config", str(config), "--out", str(tmp_path)])
    assert "unknown option 'sizes'" in capsys.readouterr().err


def test_help_is_grouped_by_topic():
    result = subprocess.run(
        [sys.executable, str(REPO / "prepare_dataset.py"), "--help"], capture_output=True, text=True, check=True
    )
    for group in ("source:", "output:", "labels and splits:", "balancing:", "built-in sample:", "run:"):
        assert group in result.stdout


def test_wrong_layout_for_source_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["--source", "affectnet", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    assert "holds neither Manually_Annotated_file_lists/" in capsys.readouterr().err
