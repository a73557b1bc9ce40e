"""prepare_dataset.py: a dataset on disk -> class folders, manifests and a summary."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("prepare_dataset.py")  # before the imports that need keras or pandas

from affect_keras.cli.common import ArgumentParser, add_settings, command
from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.data.prepare.config import GROUPS


def build_parser() -> ArgumentParser:
    """prepare_dataset.py's flags: one per PrepareConfig field (its help, default, choices and group are the
    field's)."""
    parser = ArgumentParser(
        prog="prepare_dataset.py",
        description="Write OUT/{train,val,test}/<Class>/*.jpg, a manifest per split and a summary, from "
        "AffectNet (either release), FER+, a class-folder tree, or the built-in sample.",
    )
    add_settings(parser, PrepareConfig, GROUPS)
    return parser


@command("prepare_dataset.py")
def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(PrepareConfig, argv, required=("out",))
    try:
        summary = prepare(config)
    except (ValueError, RuntimeError) as error:  # the dataset is not what --source says; a worker died
        parser.stop(error)
    except PermissionError as error:
        parser.exit(1, f"prepare_dataset.py: error: argument --out: cannot write {error.filename}: permission denied\n")
    except KeyboardInterrupt:
        parser.exit(
            130,
            f"prepare_dataset.py: interrupted; finished images are kept, and the same command "
            f"resumes into {config.out}\n",
        )
    print(summary.report())
    print(f"Wrote {config.out}/{{train,val,test}}/, manifests, summary.json and skipped.csv")
    return 0
