"""Feature cache: with a frozen backbone, train the head on backbone features computed once.

A frozen backbone's output for an image never changes, so running it every epoch (and decoding the
JPEG again) is wasted work: the head alone trains two orders of magnitude faster on stored features.

The model is split at its pooling layer (`head_pool`), the shared layers staying those of the full
model: the *extractor* maps the float image the augmentation block hands on to pooled features, the
*head* maps pooled features to probabilities. Training the head therefore trains the full model, which is
what the run directory keeps (checkpoints, export, phase 2 continue from it unchanged).

Each split's features are stored once as a `.npy` file, memory-mapped when read, in a folder named by the
digest of everything that changes them (`CacheKey`): backbone, the digests of its architecture (every
layer's settings) and of its weights, stem, image size,
pooling, the split manifest's digest, augmentation preset, views and seed. Another run with a different
head, class weighting, optimiser or schedule finds the same folder and reuses it without running the
backbone. With augmentation, `views` augmented copies of every training image are stored and epoch e
trains on view e mod views; validation is stored unaugmented.

What caching gives up: augmentation is limited to `views` fixed draws per image instead of a fresh one
every epoch, and MixUp/CutMix (which mix images, not features) are not available.
"""

from __future__ import annotations

import hashlib
import logging
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from affect_keras.atomic import remove_stale, write_text
from affect_keras.data.fingerprint import file_version, split_fingerprint
from affect_keras.data.loader import FaceBatches
from affect_keras.models.augment import augmentation
from affect_keras.models.build import backbone_of, classifier_of
from affect_keras.models.classifier import POOL_LAYER
from affect_keras.options import OptionError

logger = logging.getLogger(__name__)
FORMAT = 4  # 2: keys hold the architecture; 3: the data's pixels, not only its manifest; 4: each image's version


@dataclass(frozen=True)
class CacheKey:
    backbone: str
    architecture_digest: str
    weights_digest: str
    stem: str
    image_size: int
    pooling: str
    data_digest: str  # the split's manifest and how its pixels were made (data.fingerprint)
    augment: str
    views: int
    seed: int
    format: int = FORMAT

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(extractor, head) sharing the inference model's layers: float 0-255 image -> pooled features ->
    output."""
    core = classifier_of(model)
    pooled = core.get_layer(POOL_LAYER).output
    extractor = keras.Model(core.get_layer("preprocessing").input, pooled, name="extractor")
    head = keras.Model(pooled, core.output, name="head")  # the output structure: a dict for several heads
    return extractor, head


def architecture_digest(net: keras.Model) -> str:
    """Every layer's type and settings (not its name): equal weights in another architecture (a ResNet
    with the other padding, say) give other features."""
    layers = [
        [type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"}]
        for layer in net.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    return hashlib.sha256(json.dumps(layers, sort_keys=True, default=str).encode()).hexdigest()[:20]


def weights_digest(net: keras.Model) -> str:
    digest = hashlib.sha256()
    for weight in net.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:20]


def extract_features(
    extractor: keras.Model, data: FaceBatches, block: keras.Layer | None, *, out: np.ndarray, batch_size: int = 64
) -> None:
    """Pooled features of every image of `data`, in manifest order, into `out` (images, features);
    `block` augments the images first, rounded and clipped to 0-255 as the training model hands them to its
    classifier."""
    for start in range(0, len(data.files), batch_size):
        images = data.decoded.take(range(start, min(start + batch_size, len(data.files))))
        x = images.astype("float32")
        if block is not None:
            x = keras.ops.convert_to_numpy(block(x, training=True))
            x = np.clip(np.round(x), 0, 255)
        out[start : start + len(images)] = extractor.predict_on_batch(x)  # compiled once, unlike a call


def cached_features(model: keras.Model, data: FaceBatches, key: CacheKey, root: Path, log=None) -> np.ndarray:
    """(views, images, features) for `data`, memory-mapped from `root/<key digest>/<split>.npy`; computed
    and stored the first time, straight into a memory-mapped file (AffectNet-sized caches need not fit
    in memory) under a temporary name, so an interrupted build is simply redone. A stored file is checked
    against the shape and sums recorded when it was built (`<split>.check.json`): a truncated, emptied or
    overwritten file is rebuilt, and the log says why."""
    log = log or logger.info
    folder = Path(root) / key.digest()
    path = folder / f"{data.split}.npy"
    extractor, _ = split_model(model)
    shape = (key.views, len(data.files), extractor.output.shape[-1])
    if path.is_file():
        stored, problem = _checked(path, shape)
        if stored is not None:
            log(f"Feature cache: reusing {path}")
            return stored
        log(f"Feature cache: {path} {problem}; rebuilding it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "key.json", json.dumps(asdict(key), indent=1))
    except OSError as error:  # a read-only shared dataset (permission denied), a file in the way, a full disk
        reason = (error.strerror or type(error).__name__).lower()
        raise OptionError(
            "cache_dir",
            f": cannot write the feature cache into {folder} ({reason}); give a "
            f"writable folder with --cache-dir (the default is beside the data)",
        ) from None
    start = time.perf_counter()
    remove_stale(folder, f"{data.split}.", ".partial.npy")  # of a run that was killed
    partial = folder / f"{data.split}.{os.getpid()}.partial.npy"  # two runs filling one cache never share it
    features = np.lib.format.open_memmap(partial, mode="w+", dtype="float32", shape=shape)
    for view in range(key.views):
        block = augmentation(key.augment, seed=key.seed * 1000 + view) if key.augment != "none" else None
        extract_features(extractor, data, block, out=features[view])
    features.flush()
    write_text(_check_file(path), json.dumps({"shape": list(shape), **_sums(features)}))
    del features
    os.replace(partial, path)
    seconds = time.perf_counter() - start
    log(
        f"Feature cache: {data.split}, {key.views} view(s) x {len(data.files)} images in {seconds:.1f} s "
        f"({key.views * len(data.files) / max(seconds, 1e-9):.0f} images/s) -> {path}"
    )
    return np.load(path, mmap_mode="r")


def _check_file(path: Path) -> Path:
    return path.with_name(path.name.replace(".npy", ".check.json"))


def _sums(features: np.ndarray) -> dict:
    """The sha256 of every stored value in order (one pass over the file, a view at a time): a zeroed,
    truncated, altered or reordered file changes it."""
    digest = hashlib.sha256()
    for view in features:
        digest.update(np.ascontiguousarray(view).tobytes())
    return {"sha256": digest.hexdigest()}


_verified: set[tuple] = set()  # (path, size, mtime) of cache files checked in this process


def _checked(path: Path, shape: tuple) -> tuple[np.ndarray | None, str]:
    """(the stored features, "") when `path` holds what its check file recorded, else (None, what is wrong)."""
    check = _check_file(path)
    version = file_version(path)
    if version in _verified and tuple(np.load(path, mmap_mode="r").shape) == tuple(shape):
        return np.load(path, mmap_mode="r"), ""
    if not check.is_file():
        return None, "has no check record (built by an older version, or its build was cut short)"
    try:
        stored = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as error:
        return None, f"cannot be read ({type(error).__name__}: {str(error)[:80]})"
    try:
        recorded = json.loads(check.read_text())
        recorded_shape, recorded_digest = list(recorded["shape"]), recorded["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "has a damaged check record (or one of an older version)"
    if tuple(stored.shape) != tuple(shape) or recorded_shape != list(shape):
        return None, f"holds shape {tuple(stored.shape)}, expected {tuple(shape)}"
    if _sums(stored)["sha256"] != recorded_digest:
        return None, "does not hold what was stored (its values changed since it was built)"
    _verified.add(version)
    return stored, ""


def cache_keys(
    model: keras.Model,
    backbone: str,
    stem: str,
    pooling: str,
    seed: int,
    splits: dict[str, tuple[FaceBatches, str, int]],
) -> dict[str, CacheKey]:
    """The key of each split: {name: (data, augmentation preset, views)}; the weights hashed once."""
    net = backbone_of(model)
    digest, architecture = weights_digest(net), architecture_digest(net)
    return {
        name: CacheKey(
            backbone=backbone,
            architecture_digest=architecture,
            weights_digest=digest,
            stem=stem,
            image_size=data.image_size,
            pooling=pooling,
            data_digest=split_fingerprint(data.root, data.split),
            augment=augment,
            views=views,
            seed=seed,
        )
        for name, (data, augment, views) in splits.items()
    }


class CachedBatches(keras.utils.PyDataset):
    """Batches of cached features with the targets, order and sampling of the `FaceBatches` they stand for:
    epoch e (set on `faces` by `EpochOrder`) reads view e mod views, in the order `faces.sampler` draws."""

    def __init__(self, faces: FaceBatches, features: np.ndarray):
        super().__init__()
        if features.shape[1] != len(faces.files):
            raise ValueError(
                f"cached features hold {features.shape[1]} images, the {faces.split} split "
                f"{len(faces.files)}: remove the cache folder and run again"
            )
        self.faces, self.features = faces, features

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int):
        epoch, chosen = self.faces.sampler.batch(index)
        features = np.asarray(self.features[epoch % len(self.features)][chosen])
        return self.faces.table.arrange(features, self.faces.table.rows(chosen))
