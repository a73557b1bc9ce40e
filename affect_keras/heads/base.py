"""The `Head` interface and the head registry (`HEADS`, filled by `@register`)."""

from __future__ import annotations

from affect_keras.tasks import METRIC_NAMES


class Head:
    """One output of the model: what the model and the data need of it (its training loss is
    `training.losses.HEAD_LOSSES`', its report section `evaluation.sections.SECTIONS`').

    Class attributes:
        name: the output's name in models, exports and logs; `metric_names` (`tasks.METRIC_NAMES`) what
            it logs per epoch, the names of the objects `metrics()` returns for `compile`.
        loss: the class of its default loss (`ExpressionClassifier.compile`'s "auto"), as keras names it.
        needs: for a head whose targets can be missing, what data has them (said when a split has none).
        build_order: heads are built in this order (a checkpoint's weights follow layer creation order).

    Methods: `card`, its model-card line; `targets`, its per-image training targets (NaN where a face has
    none: masked out of the loss); `build` adds its output layer(s) on `features` to `outputs` ({name:
    tensor}), and a finisher to `finish` ({name: tensor -> tensor}) where it changes how another head turns
    its logits into probabilities; `columns`, its prediction columns in a predictions DataFrame.
    """

    name: str = ""
    loss: str = ""
    needs: str = ""
    build_order: int = 0

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES[self.name]

    def card(self, class_names: list[str]) -> str:
        raise NotImplementedError

    def targets(self, manifest, expression, class_names: list[str]):
        raise NotImplementedError

    def build(self, features, class_names: list[str], regularizer, outputs: dict, finish: dict) -> None:
        raise NotImplementedError

    def metrics(self) -> list:
        raise NotImplementedError

    def columns(self, table, values, class_names: list[str]) -> None:
        raise NotImplementedError


HEADS: dict[str, Head] = {}  # the head registry: output name -> head


def register(cls: type[Head]) -> type[Head]:
    """Class decorator: put one instance of the head in `HEADS` under its name."""
    if cls.name in HEADS:
        raise ValueError(f"two heads are named {cls.name!r}")
    HEADS[cls.name] = cls()
    return cls
