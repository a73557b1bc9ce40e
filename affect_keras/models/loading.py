"""The one loader: every artifact a user may hand to predict, evaluate, export or `--weights`, as one
`Loaded` model that maps uint8 faces to its named outputs and says what it is.

Each kind is an entry of `KINDS` (tried in order): a preset (a shipped preset's name or a folder with
metadata.json and sha256.json), a run directory (its `best.keras`), a `.keras` file, a SavedModel folder,
a `.tflite` file and a `.onnx` file. The keras kinds give the `ExpressionClassifier` itself, which
describes itself; the others read the `metadata.json` that export writes beside them (in a SavedModel:
its assets). What affect-keras wrote before 0.2.0 is refused with one line saying how to re-create it.

Importing this module imports no keras; the `.tflite` and `.onnx` kinds never do.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from affect_keras.tasks import EXPRESSION, VA
from affect_keras.models import presets
from affect_keras.options import OptionError, before_first_release

METADATA = "metadata.json"  # beside an exported SavedModel / .tflite / .onnx: what the model is
RUN_CHECKPOINTS = ("best.keras", "last.keras")
CLASSIFIER = "ExpressionClassifier"
# a SavedModel is a TensorFlow program: its functions may run any TensorFlow op, reading and writing files
# among them; the toolkit runs one only when the user says they trust it (`trust_saved_model`)
UNTRUSTED_SAVED_MODEL = (
    "is a SavedModel, a program whose functions can read and write files when run; "
    "load it only if you trust where it came from (--trust-saved-model, or "
    "trust_saved_model=True), or use a safe format: .keras (loaded in keras's safe mode), "
    ".tflite or .onnx (export.py writes each)"
)
RECREATE = (
    "re-create it with this version (train.py --config RUN/config.yaml trains the run again; "
    "export.py and save_preset then write new exports and presets)"
)

Outputs = dict[str, np.ndarray]
ONE_STEP = 256  # faces a keras model takes in one compiled step (`_forward`)
PROBABILITY_SUM = 0.02  # how far a row of probabilities may sum from 1 (an int8 model's rounding)
# LiteRT's threads for a model (its default is one; the shipped ResNet18 takes 27 ms a face on one core of
# this 2-core machine, 14 on two, as keras does through TensorFlow)
MODEL_THREADS = min(4, os.cpu_count() or 1)
_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar("threads", default=None)


@contextlib.contextmanager
def inference_threads(threads: int | None):
    """The CPU threads each LiteRT or ONNX Runtime model loaded inside takes (None: `MODEL_THREADS`): a
    service running several models at once gives each its share of the cores."""
    token = _threads.set(threads)
    try:
        yield
    finally:
        _threads.reset(token)


class ModelFileError(OptionError):
    """A model file that cannot be used; the message names the file."""

    def __init__(self, reason: str, option: str = "model"):
        super().__init__(option, reason)


@dataclass
class Loaded:
    """A model ready to predict, whatever file it came from.

    Attributes:
        kind: the `KINDS` entry that read it.
        path: what was given.
        outputs: (n, size, size, 3) uint8 faces -> {head: (n, ...) array}.
        class_names, image_size, heads, framing: what the model is (framing: how its training faces were
            cut, a `data.faces.Framing` dict, or None).
        classifier: the `ExpressionClassifier` for the keras kinds, else None.
        metadata: a preset's or an export's metadata.json.
        engine: what runs it (`ENGINES`' name).
    """

    kind: str
    path: Path
    outputs: Callable[[np.ndarray], Outputs]
    class_names: list[str]
    image_size: int
    heads: tuple[str, ...]
    framing: dict | None = None
    classifier: object = None
    metadata: dict = field(default_factory=dict)
    engine: str = "keras"

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, classes) expression probabilities of n faces cut to the model's input: an (n, size, size, 3)
        array (one (size, size, 3) face: n = 1) of uint8, of other integers in 0-255, or of floats in [0, 1]
        or 0-255 (`affect_keras.predict` finds and cuts the faces of a photo). Anything else is a ValueError
        saying what was given; no faces give (0, classes)."""
        if EXPRESSION not in self.heads:
            raise ValueError(f"the model has no expression output (its outputs: {', '.join(self.heads)})")
        faces = self.faces(images)
        if not len(faces):
            return np.zeros((0, len(self.class_names)), np.float32)
        return self.outputs(faces)[EXPRESSION]

    def faces(self, images) -> np.ndarray:
        """`images` checked as `predict` takes them, as an (n, size, size, 3) uint8 array."""
        from affect_keras.data.images import uint8_values

        array, size = np.asarray(images), self.image_size
        if array.shape == (size, size, 3):
            array = array[None]
        if array.ndim != 4 or array.shape[1:] != (size, size, 3):
            raise ValueError(
                f"faces must be an (n, {size}, {size}, 3) RGB array for this model, not one of shape "
                f"{array.shape}: resize the faces to {size} px (affect_keras.predict finds and cuts them in a photo)"
            )
        return uint8_values(array, "faces")


def named_outputs(result, heads: tuple[str, ...] = (EXPRESSION,)) -> Outputs:
    """A model's result as {head: array}: a single output is the expression classifier's."""
    if isinstance(result, dict):
        return {name: np.asarray(value) for name, value in result.items()}
    return {heads[0]: np.asarray(result)}


def classifier_config(path: Path) -> dict:
    """The `ExpressionClassifier`'s constructor arguments in a `.keras` file (its config.json, read without
    keras); refuses anything else, naming the file (what affect-keras wrote before 0.2.0: with how to
    re-create it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: not a keras model file (.keras is a zip archive holding config.json)") from None
    if config.get("registered_name") != f"affect_keras>{CLASSIFIER}":
        if "affect_keras>" in json.dumps(config):  # our layers in another model: the layout before 0.2.0
            raise ModelFileError(before_first_release(f"{path} was written", RECREATE))
        raise ModelFileError(f"{path} holds a {config.get('class_name')}, not an affect-keras {CLASSIFIER}")
    return config["config"]


def run_checkpoint(run: Path) -> Path:
    for name in RUN_CHECKPOINTS:
        if (Path(run) / name).is_file():
            return Path(run) / name
    raise ModelFileError(f"{run}: no {' or '.join(RUN_CHECKPOINTS)} (not a finished run directory)")


def _load_keras_file(path: Path):
    import keras

    from affect_keras import _registration

    _registration.register_custom_objects()
    classifier_config(path)  # refuses what is not a classifier before keras runs anything of it
    try:  # compile=False: inference needs neither the loss nor the optimiser
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise ModelFileError(
            f"{path}: keras cannot rebuild the classifier in it (damaged, or written by "
            f"another program): {_first_line(error)}"
        ) from None


def _first_line(error: Exception, limit: int = 200) -> str:
    """An error's first line, cut to `limit` characters (a message never carries a whole file)."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[:limit] + "..."


def _from_classifier(kind: str, path: Path, model, metadata: dict | None = None) -> Loaded:
    m = model  # the classifier describes itself
    return Loaded(kind, path, _forward(m), list(m.class_names), m.image_size, m.heads, m.framing, m, metadata or {})


def _forward(model) -> Callable[[np.ndarray], Outputs]:
    """The model's outputs of a batch of faces: up to `ONE_STEP` faces (a photo's, a video frame's, one of
    evaluate's batches) in one compiled step (`predict_on_batch`: 11 ms for one face with the shipped
    ResNet18 on this 2-core CPU, where `predict` sets up a loop each call, 45 ms, and an eager call takes
    38 ms; 11.8 s for 1,024 faces in batches of 64, where `predict` per batch takes 18.5 s), more faces in
    `predict`'s batches (memory stays bounded)."""
    heads = model.heads

    def outputs(images: np.ndarray) -> Outputs:
        return named_outputs(
            model.predict_on_batch(images) if len(images) <= ONE_STEP else model.predict(images, verbose=0), heads
        )

    return outputs


def export_metadata(model_path: Path, *places: Path) -> dict:
    """The metadata.json of an exported model (the first of `places` that has one)."""
    for place in places:
        if (place / METADATA).is_file():
            metadata = presets.read_json(place / METADATA, ModelFileError)
            if "class_names" not in metadata or "image_size" not in metadata:
                raise ModelFileError(f"{place / METADATA} does not describe a model (no class_names / image_size)")
            if "version" not in metadata:
                raise ModelFileError(before_first_release(f"{model_path} was exported", RECREATE))
            return metadata
    raise ModelFileError(
        f"{model_path}: no {METADATA} beside it (export.py writes it there), so its class names "
        f"and input size are unknown"
    )


def _described(kind: str, path: Path, outputs, metadata: dict, engine: str = "keras") -> Loaded:
    """An exported model, as its metadata.json describes it (the class names and size checked by `_probe`)."""
    names, size, heads = metadata["class_names"], metadata["image_size"], tuple(metadata.get("heads", (EXPRESSION,)))
    return Loaded(kind, path, outputs, names, size, heads, metadata.get("framing"), None, metadata, engine)


def open_tflite(path: Path, metadata: dict, kind: str = "tflite") -> Loaded:
    """A `.tflite` file described by `metadata`, run by LiteRT."""
    from affect_keras.litert import tflite_interpreter

    try:
        interpreter = tflite_interpreter(path, threads=_threads.get() or MODEL_THREADS)
        runner = interpreter.get_signature_runner()
    except (ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path}: not a LiteRT model this can run (damaged?): {_first_line(error)}") from None
    inputs = runner.get_input_details()
    _one_input(path, list(inputs))
    (name,) = inputs
    batch = _check_input(path, inputs[name]["shape_signature"], metadata)

    lock = threading.Lock()  # an interpreter holds one set of tensors: two threads would swap answers

    def run(images):
        with lock:
            result = runner(**{name: np.ascontiguousarray(images, dtype=np.uint8)})
            return {head: np.array(values) for head, values in named_outputs(result).items()}  # copies

    return _described(kind, path, in_batches(run, batch), metadata, "litert")


def open_onnx(path: Path, metadata: dict, kind: str = "onnx") -> Loaded:
    """An `.onnx` file described by `metadata`, run by ONNX Runtime."""
    try:
        import onnxruntime
    except ImportError:
        raise ModelFileError(f"{path}: running .onnx models needs ONNX Runtime: pip install onnxruntime") from None
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads.get() or 0  # 0: ONNX Runtime's own choice
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception classes (Fail, InvalidGraph, ...)
        raise ModelFileError(f"{path}: not an ONNX model this can run (damaged?): {_first_line(error)}") from None
    inputs = session.get_inputs()
    _one_input(path, [i.name for i in inputs])
    feed = inputs[0]
    batch = _check_input(path, feed.shape, metadata)
    names = [output.name for output in session.get_outputs()]

    def run(images):
        values = session.run(None, {feed.name: np.ascontiguousarray(images, dtype=np.uint8)})
        return named_outputs(dict(zip(names, values)))

    return _described(kind, path, in_batches(run, batch), metadata, "onnx")


def _one_input(path: Path, names: list[str]) -> None:
    """ModelFileError, saying what it has, unless the model has one input (the faces)."""
    if len(names) != 1:
        raise ModelFileError(
            f"{path}: takes {len(names)} inputs ({', '.join(map(str, names))[:120]}); an affect-keras model "
            "takes one, the faces"
        )


def side_in_pixels(size) -> bool:
    """Whether a model's recorded input size is a side in pixels (an int from 8 to 4096, not a bool)."""
    return not isinstance(size, bool) and isinstance(size, int) and 8 <= size <= 4096


def _check_input(path: Path, shape, metadata: dict) -> int:
    """The batch size an exported model is fixed to (0: any). ModelFileError when its metadata's size is
    not a side in pixels, or its input is not (batch, size, size, 3) for that size (a dimension the model
    leaves open, -1 or a name, fits any)."""
    size = metadata.get("image_size")
    if not side_in_pixels(size):
        raise ModelFileError(f"{path}: its {METADATA} gives image_size {str(size)[:40]!r}, not a side in pixels")
    shape = [int(d) if isinstance(d, (int, np.integer)) else d for d in shape]
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(fixed) != 4 or fixed[3] not in (None, 3) or any(d not in (None, size) for d in fixed[1:3]):
        raise ModelFileError(
            f"{path}: takes inputs of shape {list(shape)}, not the (n, {size}, {size}, 3) RGB faces its {METADATA} says"
        )
    return fixed[0] or 0


def in_batches(run: Callable[[np.ndarray], Outputs], batch: int) -> Callable[[np.ndarray], Outputs]:
    """`run` for any number of faces where the model takes exactly `batch` at a time (0: any number): the
    faces in batches, the last one padded with blank faces whose outputs are dropped."""
    if not batch:
        return run

    def outputs(images: np.ndarray) -> Outputs:
        parts = []
        for start in range(0, max(len(images), 1), batch):
            chunk = images[start : start + batch]
            padding = np.zeros((batch - len(chunk), *images.shape[1:]), images.dtype)
            parts.append({head: values[: len(chunk)] for head, values in run(np.concatenate([chunk, padding])).items()})
        return {head: np.concatenate([part[head] for part in parts]) for head in parts[0]}

    return outputs


class Kind:
    """One kind of artifact, said in one place: how it is recognised (`find`), the engines that can run it
    (`engines`, `able`), how it is read (`load`) and what it records (the `Loaded`'s kind and metadata).
    A keras kind (`keras`) also gives the `ExpressionClassifier` itself (`classifier`) and its constructor
    arguments without keras (`settings`: what `--weights` needs before building a model)."""

    name = ""
    keras = False  # gives the ExpressionClassifier itself (train --weights, export, calibrate)
    engines: tuple[str, ...] = ()  # the engines that can run it, in the order an automatic choice tries

    def find(self, path: str | Path) -> Path | None:
        """Where the artifact lies if `path` is one of this kind, else None."""
        raise NotImplementedError

    def able(self, place: Path) -> tuple[str, ...]:
        """The engines that can run this artifact."""
        return self.engines

    def load(self, place: Path, engine: str | None, trust_saved_model: bool = False) -> Loaded:
        """The model, run by `engine` (None: the lightest installed one that can)."""
        self.engine(place, engine)  # keras, the one engine of the keras kinds but the preset
        return _from_classifier(self.name, place, self.classifier(place))

    def engine(self, place: Path, wanted: str | None = None, able: tuple[str, ...] | None = None) -> str:
        """The engine that runs it: `wanted` if it can, else (None) the lightest installed one of `able`
        (default `self.able`). ModelFileError when none can, saying what to install or choose."""
        able = self.able(place) if able is None else able
        if wanted is not None and wanted not in ENGINES:
            raise ModelFileError(f"must be one of {', '.join(ENGINES)}, not {wanted!r}", "engine")
        if wanted is not None:
            if wanted not in able:
                raise ModelFileError(
                    f"{wanted}: {self.cannot(place, wanted)}; it runs with {' or '.join(able)}", "engine"
                )
            if not installed(wanted):
                module, install = ENGINES[wanted]
                raise ModelFileError(f"{wanted} needs {module}, not installed here: {install}", "engine")
            return wanted
        for candidate in (e for e in AUTOMATIC if e in able):
            if installed(candidate):
                return candidate
        installs = "; ".join(ENGINES[e].install for e in able)
        raise ModelFileError(f"{place} runs with {' or '.join(able)}, none installed here: {installs}")

    def cannot(self, place: Path, engine: str) -> str:  # why `engine` cannot run it
        return f"{place} is a {self.name} model"

    def trusted(self, place: Path, trust_saved_model: bool) -> None:
        """ModelFileError when reading it would run code the user has not said they trust."""


class PresetKind(Kind):
    """A shipped preset's name or a folder with metadata.json and sha256.json: its keras files, or the
    runtime file of an engine it carries (`presets.RUNTIME_FILES`), each checked against its sha256."""

    name, keras, engines = "preset", True, ("litert", "onnx", "keras", "litert-int8")

    def find(self, path):
        return presets.preset_path(path)  # the one place a preset's name is resolved

    def able(self, place, sums: dict | None = None):
        sums = presets.read_json(place / presets.CHECKSUMS) if sums is None else sums
        return tuple(e for e in self.engines if e == "keras" or presets.RUNTIME_FILES.get(e) in sums)

    def load(self, place, engine, trust_saved_model=False):
        try:
            sums = presets.read_json(place / presets.CHECKSUMS)  # read once for the engine and the check
            chosen = self.engine(place, engine, self.able(place, sums))
            runtime = presets.RUNTIME_FILES.get(chosen)
            metadata = presets.verify(place, *([(presets.METADATA, runtime)] if runtime else []), sums=sums)
            if not runtime:
                return _from_classifier(self.name, place, self._checked(place), metadata)
        except presets.PresetError as error:
            raise ModelFileError(str(error)) from None
        loaded = (open_onnx if chosen == "onnx" else open_tflite)(place / runtime, metadata, self.name)
        loaded.engine = chosen  # litert-int8 too
        return loaded

    def cannot(self, place, engine):
        return f"preset {place} carries no {presets.RUNTIME_FILES.get(engine, 'file for it')}"

    def classifier(self, place):
        try:
            presets.verify(place)
            return self._checked(place)
        except presets.PresetError as error:
            raise ModelFileError(str(error)) from None

    @staticmethod
    def _checked(place):
        from affect_keras.models.classifier import ExpressionClassifier

        return ExpressionClassifier.from_checked_preset(place)

    def settings(self, place):
        return presets.read_json(place / presets.CONFIG, ModelFileError).get("config", {})


class KerasKind(Kind):
    """A `.keras` file holding an `ExpressionClassifier`, loaded in keras's safe mode."""

    name, keras, engines = "keras", True, ("keras",)

    def find(self, path):
        return Path(path) if Path(path).suffix == ".keras" and Path(path).is_file() else None

    def file(self, place: Path) -> Path:  # the .keras file it reads
        return place

    def classifier(self, place):
        return _load_keras_file(self.file(place))

    def settings(self, place):
        return classifier_config(self.file(place))


class RunKind(KerasKind):
    """A run directory (config.yaml): its best.keras (last.keras before the first checkpoint)."""

    name = "run"

    def find(self, path):
        return Path(path) if Path(path).is_dir() and (Path(path) / "config.yaml").is_file() else None

    def file(self, place):
        return run_checkpoint(place)


class SavedModelKind(Kind):
    """An exported SavedModel folder, described by the metadata.json in its assets: a program, run only
    when the user trusts it."""

    name, engines = "saved_model", ("keras",)

    def find(self, path):
        return Path(path) if (Path(path) / "saved_model.pb").is_file() else None

    def trusted(self, place, trust_saved_model):
        if not trust_saved_model:
            raise ModelFileError(f"{place} {UNTRUSTED_SAVED_MODEL}")

    def load(self, place, engine, trust_saved_model=False):
        self.trusted(place, trust_saved_model)
        self.engine(place, engine)
        import tensorflow as tf

        metadata = export_metadata(place, place / "assets", place.parent)
        try:
            loaded = tf.saved_model.load(str(place))
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as error:
            raise ModelFileError(
                f"{place}: TensorFlow cannot read this SavedModel (damaged?): {_first_line(error)}"
            ) from None
        if not hasattr(loaded, "serve"):
            raise ModelFileError(f"{place}: this SavedModel has no `serve` function (export.py writes one)")
        heads = tuple(metadata.get("heads", (EXPRESSION,)))

        def outputs(images):
            result = loaded.serve(tf.constant(images))
            return named_outputs(
                {k: v.numpy() for k, v in result.items()} if isinstance(result, dict) else result.numpy(), heads
            )

        return _described(self.name, place, outputs, metadata)


class FileKind(Kind):
    """An exported `.tflite` or `.onnx` file, described by the metadata.json beside it."""

    def __init__(self, name: str, engine: str, opener):
        self.name, self.engines, self.open = name, (engine,), opener

    def find(self, path):
        return Path(path) if Path(path).suffix == f".{self.name}" and Path(path).is_file() else None

    def load(self, place, engine, trust_saved_model=False):
        self.engine(place, engine)
        return self.open(place, export_metadata(place, place.parent), self.name)


class Engine(NamedTuple):
    """What runs a model: the module it needs and how to install it (each `Kind` says which it can use)."""

    module: str
    install: str


# the engine registry (--engine): the lightest first
ENGINES = {
    "litert": Engine("ai_edge_litert", "pip install ai-edge-litert"),
    "onnx": Engine("onnxruntime", "pip install onnxruntime"),
    "keras": Engine("keras", "pip install 'affect-keras[train,cpu]'"),
    "litert-int8": Engine("ai_edge_litert", "pip install ai-edge-litert"),  # a preset's; asked for, never chosen
}
AUTOMATIC = ("litert", "onnx", "keras")


def module_installed(module: str) -> bool:
    """Whether `module` can be imported here, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses the module (as the JAX-only tests do)
        return False


def installed(engine: str) -> bool:
    module = ENGINES[engine].module
    return module_installed(module) or (module == "ai_edge_litert" and module_installed("tensorflow"))


# the artifact registry, tried in order (a preset's name before any folder)
KINDS = {kind.name: kind for kind in (PresetKind(), RunKind(), KerasKind(), SavedModelKind())}
KINDS |= {"tflite": FileKind("tflite", "litert", open_tflite), "onnx": FileKind("onnx", "onnx", open_onnx)}


def identify(path: str | Path) -> tuple[Kind, Path] | None:
    """(the `KINDS` entry, where the artifact lies) of what `path` is, or None."""
    for kind in KINDS.values():
        place = kind.find(path)
        if place is not None:
            return kind, place
    return None


def kind_of(path: str | Path) -> str | None:
    """The `KINDS` name of what `path` is, or None (a preset's bare name means the shipped preset)."""
    found = identify(path)
    return found[0].name if found else None


def engine_for(path: str | Path, engine: str | None = None) -> str:
    """The engine that runs `path`: `engine` if it can, else the lightest installed one that can."""
    kind, place = _identified(path, "model")
    return kind.engine(place, engine)


def _identified(path: str | Path, option: str, keras: bool = False) -> tuple[Kind, Path]:
    """`identify`, or ModelFileError naming `option` (`keras`: only a kind that gives the classifier)."""
    found = identify(path)
    if found is None or (keras and not found[0].keras):
        others = "" if keras else ", a SavedModel folder, a .tflite or an .onnx file"
        raise ModelFileError(
            f"{path}: expected a preset, a run directory{' or' if keras else ','} a .keras file{others}", option
        )
    return found


def load(path: str | Path, option: str = "model", engine: str | None = None, trust_saved_model: bool = False) -> Loaded:
    """The model at `path`, ready to predict. The model is tried once on a blank face: outputs that do not
    fit its class names, or an input it cannot take, are refused here rather than on the first photo.

    Args:
        path: a shipped preset's name, a preset or run directory, a `.keras` file, a SavedModel folder, a
            `.tflite` or an `.onnx` file; anything else is a ModelFileError naming `option`.
        option: the flag or argument `path` came from, for the messages.
        engine: what runs it (`ENGINES`); None: the lightest installed one that can (a preset that carries
            its runtime files runs in LiteRT, without keras).
        trust_saved_model: run a SavedModel, which is a program (refused otherwise).

    Returns:
        A `Loaded`: `kind` (the `KINDS` name), `class_names`, `image_size`, `heads`, `framing`, and
        `predict(faces)` (uint8 RGB faces of image_size x image_size) -> the expression probabilities.

    Examples:
        `affect_keras.load_model`; the export `affect_keras.export` wrote:

        >>> import affect_keras, numpy as np
        >>> model = affect_keras.load_model("models/s32/export/model.tflite")
        >>> model.kind, model.image_size, len(model.class_names)
        ('tflite', 32, 8)
        >>> model.predict(np.zeros((2, 32, 32, 3), "uint8")).shape
        (2, 8)
    """
    kind, place = _identified(path, option)
    with _naming(option):
        loaded = kind.load(place, engine, trust_saved_model)
        _probe(loaded)
    return loaded


def _probe(loaded: Loaded) -> None:
    """Run the model once on a blank face: ModelFileError when it cannot take (1, size, size, 3) uint8
    faces or when its expression output does not have one value per class name."""
    names = loaded.class_names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ModelFileError(f"{loaded.path}: its class names are not a list of names: {str(names)[:100]}")
    size = loaded.image_size
    if not side_in_pixels(size):
        raise ModelFileError(f"{loaded.path}: its input size {str(size)[:40]} is not a side in pixels")
    try:
        outputs = loaded.outputs(np.zeros((1, size, size, 3), np.uint8))
    except Exception as error:  # whatever the engine raises for an input the model does not take
        raise ModelFileError(
            f"{loaded.path}: does not take ({size}, {size}, 3) RGB faces as it says it does: {_first_line(error)}"
        ) from None
    if EXPRESSION in loaded.heads:
        if EXPRESSION not in outputs:
            raise ModelFileError(f"{loaded.path}: no {EXPRESSION} output (it has {', '.join(outputs)})")
        width = outputs[EXPRESSION].shape[-1]
        if width != len(names):
            raise ModelFileError(f"{loaded.path}: {width} expression outputs but {len(names)} class names")
        rows = np.asarray(outputs[EXPRESSION], np.float64).reshape(-1, width)
        if not (np.isfinite(rows).all() and rows.min() >= -1e-3 and rows.max() <= 1 + 1e-3):
            raise ModelFileError(
                f"{loaded.path}: its expression outputs are not probabilities (from {rows.min():.4g} to "
                f"{rows.max():.4g} on a blank face): an export of logits, or damaged?"
            )
        if np.abs(rows.sum(axis=1) - 1).max() > PROBABILITY_SUM:
            raise ModelFileError(
                f"{loaded.path}: its expression outputs sum to {rows.sum(axis=1).max():.4g}, not 1, on a blank face"
            )
    if VA in loaded.heads and VA in outputs:
        va = np.asarray(outputs[VA], np.float64)
        if va.shape[-1] != 2 or not np.isfinite(va).all() or np.abs(va).max() > 1 + 1e-3:
            raise ModelFileError(
                f"{loaded.path}: its va output is not (valence, arousal) in [-1, 1] (width {va.shape[-1]}, from "
                f"{va.min():.4g} to {va.max():.4g} on a blank face)"
            )


def check_trusted(path: str | Path, trust_saved_model: bool = False, option: str = "model") -> None:
    """ModelFileError (naming `option`) when `path` is a kind that runs code (a SavedModel) and the user
    has not said they trust it: said before any long work."""
    found = identify(path)
    if found is not None:
        with _naming(option):
            found[0].trusted(found[1], trust_saved_model)


def load_classifier(path: str | Path, option: str = "model"):
    """The `ExpressionClassifier` of a preset, a run directory or a `.keras` file."""
    kind, place = _identified(path, option, keras=True)
    with _naming(option):
        return kind.classifier(place)


def classifier_settings(path: str | Path) -> dict:
    """The classifier's constructor arguments of a preset, a run directory or a `.keras` file, read
    without keras (what `--weights PATH` needs to know of it before building a model)."""
    kind, place = _identified(path, "weights", keras=True)
    with _naming("weights"):
        return kind.settings(place)


@contextlib.contextmanager
def _naming(option: str):
    """A model file's error, naming `option` (the setting that gave the path: `--weights`, `--model`)."""
    try:
        yield
    except ModelFileError as error:
        if error.option != "model":  # another setting's error (--engine)
            raise
        raise ModelFileError(error.reason, option) from None
