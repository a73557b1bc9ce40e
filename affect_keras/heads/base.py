"""The `Head` interface and the head registry (`HEADS`, filled by `@register`)."""

from __future__ import annotations

from affect_keras.tasks import METRIC_NAMES


class Head:
    """One output of the model: what the model and the data need of it. Its loss and metrics at training
    time are `training.heads`', its report section `evaluation.sections`'.

    Class attributes:
        name: the output's name in models, exports and logs.
        metric_names: the metric names it logs per epoch (`tasks.METRIC_NAMES`); `metrics()` returns
            objects of exactly these names.
        loss: the class of its default loss (`ExpressionClassifier.compile`'s "auto"), as keras names it.
        needs: for a head whose targets can be missing, what data has them (said when a split has none).
        build_order: heads are built in this order (a checkpoint's weights follow layer creation order).
    """

    name: str = ""
    loss: str = ""
    needs: str = ""
    build_order: int = 0

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES[self.name]

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

    def default_loss(self):
        """Its default loss, a keras object."""
        import keras

        return keras.losses.get({"class_name": self.loss, "config": {}})

    def metrics(self) -> list:
        """What `compile` takes as its metrics (named as `metric_names`; custom ones by their keras name)."""
        raise NotImplementedError

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
