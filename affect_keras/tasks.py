"""What a model predicts: the task registry (`--task`), each task a set of named heads.

* `expression`: class probabilities (the single output every earlier run has; `class_weight` works);
* `va`: valence and arousal in [-1, 1] (tanh), one output named `va`;
* `multitask`: `expression` and `va` on one backbone;
* `hierarchical`: `polarity` (positive / neutral / negative as the `polarity3` scheme groups the codes)
  and, within each polarity, the expressions it holds, combined into the usual `expression` probabilities
  p(class) = p(polarity of class) * p(class | polarity), so every metric, export and predict of the flat
  classifier works on it.

Models with more than one head, or another head than `expression`, have dict outputs keyed by head name;
targets come as dicts with the same keys, and class weights as per-sample weights (keras's
`class_weight` serves single-output models only).

Importing this module imports no keras: the CLI lists the names and checks the monitor against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from affect_keras.options import OptionError

EXPRESSION, VA, POLARITY = "expression", "va", "polarity"
VA_DIMENSIONS = ("valence", "arousal")


@dataclass(frozen=True)
class Head:
    """What every layer needs to know of one output head. Its layers (`models.heads.HEAD_LAYERS`), loss and
    metric objects (`training.heads.TRAINING_HEADS`), report section and prediction columns
    (`evaluation.report.REPORT_HEADS`) are registered under the same name in their own layer; a test
    checks that every registry covers exactly these heads.

    Args:
        name: the output's name in models, exports and logs.
        metrics: the metric names it logs per epoch (keras prefixes them with the head's name when a
            model has several outputs).
        card: its model-card line, given the class names.
        targets: its per-image training targets, given (manifest, expression targets, class names); NaN
            where a face has none (masked out of the loss).
        needs: for a head whose targets can be missing, what data has them (said when a split has none).
    """
    name: str
    metrics: tuple[str, ...]
    card: Callable[[list[str]], str]
    targets: Callable
    needs: str = ""


def _expression_targets(manifest, expression, class_names):
    return expression


def _va_targets(manifest, expression, class_names):
    import numpy as np
    import pandas as pd
    return np.stack([pd.to_numeric(manifest[d], errors="coerce").to_numpy("float32")
                     if d in manifest else np.full(len(manifest), np.nan, "float32")
                     for d in VA_DIMENSIONS], axis=1).reshape(len(manifest), 2)


def _polarity_targets(manifest, expression, class_names):
    from affect_keras.labels import polarity_matrix, polarity_of
    return expression @ polarity_matrix(polarity_of(class_names))


# the head registry: output name -> what it is
HEADS = {
    EXPRESSION: Head(EXPRESSION, ("accuracy", "top2"),
                     lambda names: f"`{EXPRESSION}`: probabilities of the {len(names)} classes, in the order below",
                     _expression_targets),
    VA: Head(VA, tuple(f"{d}_ccc" for d in VA_DIMENSIONS),
             lambda names: f"`{VA}`: valence and arousal, each in [-1, 1]", _va_targets,
             needs="valence / arousal (only AffectNet and the built-in sample have them)"),
    POLARITY: Head(POLARITY, ("accuracy",),
                   lambda names: "`polarity`: probabilities of Positive, Neutral, Negative (the expression output "
                                 "is p(polarity) x p(class within it))", _polarity_targets),
}


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
            return ("loss", *HEADS[self.heads[0]].metrics)
        names = ["loss"]
        for head in self.heads:
            names += [f"{head}_loss", *(f"{head}_{m}" for m in HEADS[head].metrics)]
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
