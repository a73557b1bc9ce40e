"""What a run directory's model and settings are, read from its files: the one place that knows the older
versions.

`migrate(config)` reads a run's config.yaml of any version as the current `TrainConfig` version: each
setting a run predates (its config.yaml lacks the key) gets what runs did before it existed
(`BEFORE_SETTING`), among them `layout: chain` (runs before the core / training split were one model) and
`task: expression`. A config.yaml written by a newer version is refused, naming both versions.
`training.config.TrainConfig.adopt` continues an older run through it, and `evaluation.study` judges a
finished run through it.

`run_info(run)` returns the description consumers need (class names, task, backbone, stem, padding,
image size, layout), its config.yaml read through `migrate`; the rules for the run's other files:

* no `class_names.json` (runs before it was written): the class order of the run's data (`summary.json`);
* no `backbone.json` (runs before it): the stem their config implied (ResNet18/34 got the small stem at
  64 px or less) and keras's own padding (torch padding came with backbone.json).

A model's checkpoint also holds the chain layout's re-wiring at load time (`deploy.inference`).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from affect_keras.names import CLASS_NAMES

BACKBONE_INFO = "backbone.json"  # beside backbone.weights.h5: what it takes to rebuild that backbone
SMALL_STEM_UP_TO = 64  # before backbone.json, ResNets got the small stem at this size or less

# config.yaml's versions: 1, every run before the key was written (settings were added over time, each
# missing from the runs before it); 2, TrainConfig with `version` (every setting written)
CONFIG_VERSION = 2
# what a run did before the setting existed: a run directory whose config.yaml lacks the key continues
# doing it (a settings file from an older version must not block "the same command continues the run")
BEFORE_SETTING = {"input_pipeline": "pydataset", "loss": "crossentropy", "logit_tau": 1.0, "focal_gamma": 2.0,
                  "class_weight_power": 1.0, "cache_views": 0, "cache_dir": "",
                  "layout": "chain", "task": "expression", "va_loss": "ccc", "va_weight": 1.0,
                  "distribute": "none"}


def migrate(config: dict) -> dict:
    """A run's settings (its config.yaml) of any version, as the current version reads them."""
    version = config.get("version", 1)
    if not isinstance(version, int) or version > CONFIG_VERSION:
        raise ValueError(f"config.yaml of version {version!r} was written by a newer affect-keras (this one "
                         f"reads versions 1-{CONFIG_VERSION}); upgrade affect-keras to continue or use this run")
    return {**{key: value for key, value in BEFORE_SETTING.items() if key not in config}, **config,
            "version": CONFIG_VERSION}


def run_info(run: Path, class_names: bool = True) -> dict:
    """{class_names, task, backbone, stem, padding, image_size, layout, weights} of a run directory; keys
    that cannot be known (a bare weights file's folder) are left out. `class_names=False`: only what the
    backbone needs (an older run's class order comes from its data, which may be gone)."""
    run = Path(run)
    config = (yaml.safe_load((run / "config.yaml").read_text()) or {}) if (run / "config.yaml").is_file() else {}
    config = migrate(config) if config else {"task": "expression", "layout": "core"}  # a bare weights folder
    info = {key: config[key] for key in ("backbone", "stem", "weights") if config.get(key)}
    info["task"], info["layout"] = config["task"], config["layout"]
    size = config.get("image_size") or None
    if (run / BACKBONE_INFO).is_file():
        saved = json.loads((run / BACKBONE_INFO).read_text())
        info.update({key: saved[key] for key in ("backbone", "stem", "image_size", "weights") if saved.get(key)})
        info["padding"] = saved.get("padding", "torch")
    else:
        info["padding"] = "keras"
        if info.get("backbone") in ("resnet18", "resnet34"):
            from affect_keras.models.backbones import get_backbone
            size = size or get_backbone(info["backbone"]).default_size
            info["stem"] = "small" if size <= SMALL_STEM_UP_TO else "imagenet"
        elif info.get("backbone"):
            info.pop("stem", None)
    if size and "image_size" not in info:
        info["image_size"] = size
    names = _class_names(run, config) if class_names else None
    if names is not None:
        info["class_names"] = names
    return info


def _class_names(run: Path, config: dict) -> list[str] | None:
    if (run / CLASS_NAMES).is_file():
        return json.loads((run / CLASS_NAMES).read_text())
    if not config:
        return None
    summary = Path(config["data"]) / "summary.json"
    if not summary.is_file():
        raise ValueError(f"model {run}: no {CLASS_NAMES}, and its data {config['data']} is gone")
    return json.loads(summary.read_text())["class_names"]
