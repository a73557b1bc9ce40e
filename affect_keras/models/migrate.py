"""What a run directory's model is, read from its files: the one place that knows the older layouts.

`run_info(run)` returns the description consumers need (class names, task, backbone, stem, padding,
image size, layout). Runs of every age pass through it; each rule below names the layout it serves:

* no `class_names.json` (runs before it was written): the class order of the run's data (`summary.json`);
* no `backbone.json` (runs before it): the stem their config implied (ResNet18/34 got the small stem at
  64 px or less) and keras's own padding (torch padding came with backbone.json);
* no `layout` in config.yaml (runs before the core / training split): one "chain" model;
* no `task` in config.yaml: the expression classifier.

A model's checkpoint also holds the chain layout's re-wiring at load time (`deploy.inference`), and the
settings of an older run are continued by `training.config.TrainConfig.adopt_older`.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from affect_keras.names import CLASS_NAMES

BACKBONE_INFO = "backbone.json"  # beside backbone.weights.h5: what it takes to rebuild that backbone
SMALL_STEM_UP_TO = 64  # before backbone.json, ResNets got the small stem at this size or less


def run_info(run: Path, class_names: bool = True) -> dict:
    """{class_names, task, backbone, stem, padding, image_size, layout, weights} of a run directory; keys
    that cannot be known (a bare weights file's folder) are left out. `class_names=False`: only what the
    backbone needs (an older run's class order comes from its data, which may be gone)."""
    run = Path(run)
    config = (yaml.safe_load((run / "config.yaml").read_text()) or {}) if (run / "config.yaml").is_file() else {}
    info = {key: config[key] for key in ("backbone", "stem", "weights") if config.get(key)}
    info["task"] = config.get("task", "expression")
    info["layout"] = config.get("layout", "chain") if config else "core"
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
