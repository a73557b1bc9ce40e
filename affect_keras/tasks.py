"""What a model can be trained to predict: the output heads' names (`expression`, `va`, `polarity`: what
each is, `affect_keras.heads`) and the task registry (`--task`), each task a set of heads. Models with more
than one head, or another head than `expression`, have dict outputs keyed by head name; targets come as
dicts with the same keys, and class weights as per-sample weights (keras's `class_weight` serves
single-output models only). Imports no keras: the CLIs list the tasks and check `--monitor` with it."""

from __future__ import annotations

from dataclasses import dataclass

from affect_keras.options import OptionError

EXPRESSION, VA, POLARITY = "expression", "va", "polarity"
VA_DIMENSIONS = ("valence", "arousal")
# what each head logs per epoch (keras prefixes them with the head's name when a model has several outputs)
METRIC_NAMES = {EXPRESSION: ("accuracy", "top2"), VA: tuple(f"{d}_ccc" for d in VA_DIMENSIONS), POLARITY: ("accuracy",)}


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
            return ("loss", *METRIC_NAMES[self.heads[0]])
        return ("loss", *(f"{head}_{m}" for head in self.heads for m in ("loss", *METRIC_NAMES[head])))

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
