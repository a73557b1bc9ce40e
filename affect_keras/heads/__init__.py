"""What a model predicts: output heads, one class per head in one file of this package, and the task
registry (`--task`), each task a set of heads.

A head keeps together everything the stages need of one output: its layers (`build`), its training
targets, loss, metrics and loss weight, its report section, its prediction columns and its model-card
line. Adding a head is adding one file here that defines a `Head` subclass decorated with `@register`:
the package imports every module in it.

Importing this package imports no keras (the CLIs list the tasks and check the monitor against them): a
head imports what a stage needs inside the method that stage calls (keras in `build`, the losses in
`loss`, the metrics and plots in `report`), which is the one exception the layer test allows.

* `expression`: class probabilities (the single output of the default task; `class_weight` works);
* `va`: valence and arousal in [-1, 1] (tanh), one output named `va`;
* `polarity` (with `expression`: the `hierarchical` task): positive / neutral / negative as the
  `polarity3` scheme groups the codes, and the expression output becomes
  p(class) = p(polarity of class) * p(class | polarity).

Models with more than one head, or another head than `expression`, have dict outputs keyed by head name;
targets come as dicts with the same keys, and class weights as per-sample weights (keras's
`class_weight` serves single-output models only).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from affect_keras.options import OptionError

EXPRESSION, VA, POLARITY = "expression", "va", "polarity"
VA_DIMENSIONS = ("valence", "arousal")


class Head:
    """One output of the model, with all that each stage needs of it.

    Class attributes:
        name: the output's name in models, exports and logs.
        metric_names: the metric names it logs per epoch (keras prefixes them with the head's name when a
            model has several outputs); `metrics()` returns objects of exactly these names.
        needs: for a head whose targets can be missing, what data has them (said when a split has none).
        build_order: heads are built in this order (a checkpoint's weights follow layer creation order).
    """

    name: str = ""
    metric_names: tuple[str, ...] = ()
    needs: str = ""
    build_order: int = 0

    def card(self, class_names: list[str]) -> str:
        """Its model-card line."""
        raise NotImplementedError

    def targets(self, manifest, expression, class_names: list[str]):
        """Its per-image training targets, given the manifest (a DataFrame) and the expression targets;
        NaN where a face has none (masked out of the loss)."""
        raise NotImplementedError

    def build(self, features, class_names: list[str], regularizer, outputs: dict, finish: dict) -> None:
        """Add its output layer(s) on `features` to `outputs` ({name: tensor}); a head that changes how
        another turns its logits into probabilities adds a finisher to `finish` ({name: tensor -> tensor})."""
        raise NotImplementedError

    def loss(self, config=None, counts: list[int] | None = None):
        """Its keras loss, given the `TrainConfig` and the training images per class; without them, its
        default loss (`ExpressionClassifier.compile`'s "auto")."""
        raise NotImplementedError

    def metrics(self) -> list:
        """What `compile` takes as its metrics (named as `metric_names`)."""
        raise NotImplementedError

    def weight(self, config=None) -> float:
        """Its weight in the total loss."""
        return 1.0

    def report(self, report: dict, pictures: dict, values, **scored) -> None:
        """Add its scores to the evaluation report and its pictures (none by default)."""

    def columns(self, table, values, class_names: list[str]) -> None:
        """Add its prediction columns to a predictions table (a DataFrame)."""
        raise NotImplementedError


HEADS: dict[str, Head] = {}  # the head registry: output name -> head


def register(cls: type[Head]) -> type[Head]:
    """Class decorator: put one instance of the head in `HEADS` under its name."""
    if cls.name in HEADS:
        raise ValueError(f"two heads are named {cls.name!r}")
    HEADS[cls.name] = cls()
    return cls


@dataclass(frozen=True)
class Task:
    heads: tuple[str, ...]
    description: str

    @property
    def dict_outputs(self) -> bool:
        return self.heads != (EXPRESSION,)

    @property
    def has_expression(self) -> bool:
        return EXPRESSION in self.heads

    def metrics(self) -> tuple[str, ...]:
        """The names of what a run logs per epoch on training data (keras prefixes a head's metrics
        with the head's name when there are several outputs, and logs each head's loss)."""
        if len(self.heads) == 1:
            return ("loss", *HEADS[self.heads[0]].metric_names)
        names = ["loss"]
        for head in self.heads:
            names += [f"{head}_loss", *(f"{head}_{m}" for m in HEADS[head].metric_names)]
        return tuple(names)

    def monitors(self) -> tuple[str, ...]:
        return (*self.metrics(), *(f"val_{m}" for m in self.metrics()))

    def default_monitor(self) -> str:
        if not self.dict_outputs:
            return "val_accuracy"
        return f"val_{EXPRESSION}_accuracy" if self.has_expression else "val_loss"


TASKS = {
    "expression": Task((EXPRESSION,), "expression classes (default)"),
    "va": Task((VA,), "valence and arousal in [-1, 1]"),
    "multitask": Task((EXPRESSION, VA), "expression and valence / arousal heads on one backbone"),
    "hierarchical": Task((EXPRESSION, POLARITY), "polarity first, then the expression within it"),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise OptionError("task", f"must be one of {', '.join(TASKS)}")
    return TASKS[name]


# every module of this package defines and registers one head
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
