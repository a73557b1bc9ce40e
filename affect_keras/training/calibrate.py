"""Temperature scaling of a trained classifier: T fitted on a prepared split (by default the validation
split) by minimising the negative log-likelihood, and a classifier that carries it. train.py does this at
the end of a run; `calibrate.py` does it for an existing run, preset or .keras file."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.atomic import writable_file, writable_folder, write_model
from affect_keras.calibration import calibration_scores, fit_temperature, scaled, unfit
from affect_keras.tasks import EXPRESSION
from affect_keras.options import OptionError, check, check_fields, check_split, setting

log = logging.getLogger(__name__)
CALIBRATION = "calibration.json"  # in a run folder: best.keras's temperature and its scores before / after


def expression_probabilities(classifier, data: Path, split: str, batch_size: int = 64):
    """(labels, expression probabilities) of the classifier on a prepared split, in manifest order."""
    from affect_keras.data.loader import FaceBatches

    faces = FaceBatches(data, split, classifier.class_names, classifier.image_size, batch_size)
    if not len(faces):
        raise OptionError("split", f"{split}: no images in {data}")
    outputs = [classifier.predict_on_batch(images) for images, _ in faces]
    probabilities = np.concatenate([o[EXPRESSION] if isinstance(o, dict) else o for o in outputs])
    return faces.labels, np.asarray(probabilities, dtype=np.float64)


class CalibrationRefused(OptionError):
    """A split that cannot give a temperature worth keeping (`calibration.unfit`): nothing was written."""


def calibrate(classifier, data: Path, split: str = "val", batch_size: int = 64, force: bool = False):
    """(the classifier with a fitted temperature, a record of it): {temperature, split, data, images,
    before: {ece, nll, brier}, after: {...}}. A classifier calibrated before is calibrated again from
    where it is (the temperatures multiply). A model without an expression head is returned as it is.
    CalibrationRefused (naming --split) for a small or one-class split or a fit on the search's edge
    (`calibration.unfit`), unless `force`."""
    if EXPRESSION not in classifier.heads:
        return classifier, None
    labels, probabilities = expression_probabilities(classifier, data, split, batch_size)
    fitted = fit_temperature(labels, probabilities)
    reason = unfit(labels, fitted)
    if reason and not force:
        raise CalibrationRefused("split", f"{split} of {data}: {reason}; nothing was calibrated")
    if reason:
        log.warning("Calibration on %s kept as asked, though: %s", split, reason)
    scores = {
        name: {key: value for key, value in calibration_scores(labels, p).items() if key != "bins"}
        for name, p in (("before", probabilities), ("after", scaled(probabilities, fitted)))
    }
    temperature = classifier.temperature * fitted
    record = {"temperature": temperature, "split": split, "data": str(data), "images": int(len(labels)), **scores}
    log.info(
        "Calibration on %s (%d faces): temperature %.3f, ECE %.4f -> %.4f, NLL %.4f -> %.4f",
        split,
        len(labels),
        temperature,
        scores["before"]["ece"],
        scores["after"]["ece"],
        scores["before"]["nll"],
        scores["after"]["nll"],
    )
    return classifier.with_temperature(temperature), record


def calibrate_run(run: Path, data: Path, split: str = "val", batch_size: int = 64, force: bool = False):
    """A run's best.keras (what evaluate, predict, export and --weights read; last.keras stays the state
    training ended in) calibrated in place, written whole, and its record in calibration.json; returns
    (the calibrated classifier, the record). The run is locked meanwhile (a train.py or another calibrate
    on it is refused)."""
    import json

    import keras

    from affect_keras.atomic import lock_folder, write_model, write_text
    from affect_keras.models.loading import run_checkpoint

    lock_folder(run, "model")
    path = run_checkpoint(run)
    model, record = calibrate(keras.saving.load_model(path, compile=False), data, split, batch_size, force)
    write_model(model, path)
    write_text(run / CALIBRATION, json.dumps(record, indent=1))
    return model, record


def calibrate_model(
    model: str | Path,
    data: Path,
    split: str = "val",
    out: Path | None = None,
    batch_size: int = 64,
    force: bool = False,
) -> tuple[list[Path], dict]:
    """Fit the temperature of a run, a preset or a .keras file on `split` of the prepared `data`; returns
    (what was written, the record).

    * a run directory: its best.keras is calibrated in place (last.keras, the state training ended in,
      is left), the record written to calibration.json and the model card brought up to date;
    * a preset (a shipped name or a folder): a new preset folder `out` (required: a shipped preset is
      package data), with the preset's metadata plus the calibration record;
    * a .keras file: a new .keras file `out` (required).

    A split of fewer than 30 faces or of one class, or a fit on the edge of the search, is refused
    (`CalibrationRefused`, nothing written) unless `force`.
    """
    from affect_keras.models.loading import classifier_settings, kind_of, load_classifier, run_checkpoint
    from affect_keras.models.presets import CARD, load_metadata, preset_path
    from affect_keras.tasks import get_task

    settings = dict(model=str(model), data=str(data), split=split, out=str(out or ""), batch_size=batch_size)
    CalibrateConfig(**settings, force=force).validate()
    task = classifier_settings(model).get("task", "expression")
    if not get_task(task).has_expression:  # before any work: nothing would change
        raise OptionError("model", f"{model} is a {task} model: temperature scaling is for expression probabilities")
    kind = kind_of(model)
    if kind == "run":
        _, record = calibrate_run(Path(model), data, split, batch_size, force)
        from affect_keras.evaluation.model_card import write_model_card

        write_model_card(Path(model))
        return [run_checkpoint(Path(model)), Path(model) / CALIBRATION], record
    out = Path(out)
    # before the work: a place that cannot be written fails now, on one line
    if kind == "keras":
        if out.suffix != ".keras" or out.exists():
            raise OptionError("out", f"{out}: give a new file whose name ends in .keras")
        writable_file(out, "out")
    else:
        writable_folder(out.parent, "out")
    calibrated, record = calibrate(load_classifier(model), data, split, batch_size, force)
    if kind == "keras":
        write_model(calibrated, out)  # whole or not at all
        return [out], record
    metadata = load_metadata(model)
    extra = {key: metadata[key] for key in ("training", "metrics") if key in metadata}
    card = (preset_path(model) / CARD).read_text()
    card += (
        f"\n## Calibration\n\nTemperature {record['temperature']:.3f}, fitted on the `{split}` split of "
        f"`{data}` ({record['images']} faces): ECE {record['before']['ece']:.4f} -> "
        f"{record['after']['ece']:.4f}, NLL {record['before']['nll']:.4f} -> {record['after']['nll']:.4f}, "
        f"Brier {record['before']['brier']:.4f} -> {record['after']['brier']:.4f}.\n"
    )
    calibrated.save_to_preset(
        out, dtype=metadata.get("weights_dtype", "float16"), metadata={**extra, "calibration": record}, card=card
    )
    return [out], record


GROUPS = {"model": ("model", None), "data": ("data", None), "output": ("output", None)}  # calibrate.py --help's


@dataclass(kw_only=True)
class CalibrateConfig:
    """calibrate.py's settings (its flags are generated from these fields): which model, fitted on which
    split, written where.

    Examples:
        >>> config = CalibrateConfig(model="models/r18", data="data/fer48")
        >>> calibrate_model(config.model, Path(config.data), config.split, None, config.batch_size)
    """

    model: str = setting(
        "",
        group="model",
        positional=True,
        help="a run directory (its best.keras is calibrated in place), a preset (a shipped name or a folder) or a "
        ".keras file",
    )
    data: str = setting("", group="data", help="prepared dataset folder with the model's classes (required)")
    split: str = setting(
        "val", group="data", help="the split the temperature is fitted on (never the test split you report)"
    )
    batch_size: int = setting(64, group="data", check=(lambda v: v >= 1, "must be >= 1"), help="images per batch")
    out: str = setting(
        "",
        group="output",
        help="a preset: the new preset folder; a .keras file: the new file (a run is calibrated in place)",
    )
    force: bool = setting(
        False,
        group="data",
        help="keep a temperature fitted on fewer than 30 faces, on faces of one class, or on the edge of the search "
        "(refused otherwise: such a fit says little about the model's confidence)",
    )

    def __post_init__(self):
        check_fields(self)

    def validate(self) -> None:
        """The rules between settings, checked before keras starts; OptionError naming the first that fails."""
        from affect_keras.models.loading import identify

        found = identify(self.model) if self.model else None
        kind, keras = (found[0].name, found[0].keras) if found else (None, False)
        new = f"a new {'preset folder' if kind == 'preset' else '.keras file'}"
        check(
            [
                (bool(self.model), "model", "is required: a run directory, a preset or a .keras file"),
                (bool(self.data), "data", "is required: a prepared dataset folder"),
                (keras, "model", f"{self.model} is not a run directory, a preset or a .keras file"),
                (Path(self.data, "summary.json").is_file(), "data", "has no summary.json (prepare it first)"),
                (kind == "run" or bool(self.out), "out", f"is required for a {kind} ({new})"),
                (not self.out or not Path(self.out).exists(), "out", f"{self.out} exists; give a new path"),
            ]
        )
        check_split(self.data, self.split)
