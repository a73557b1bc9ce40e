"""Expression codes and the label schemes that map them to class folders.

Every source translates its own labels into AffectNet's expression codes (0-10); a label scheme then
decides which codes are kept and under which class name. Class names are stable, human folder names,
and a scheme's class order (not the alphabetical folder order) is the order of the model's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from affect_keras.options import OptionError

AFFECTNET_CODES: Mapping[int, str] = {
    0: "Neutral",
    1: "Happy",
    2: "Sad",
    3: "Surprise",
    4: "Fear",
    5: "Disgust",
    6: "Anger",
    7: "Contempt",
    8: "None",
    9: "Uncertain",
    10: "NonFace",
}
CODE_OF_NAME: Mapping[str, int] = {name: code for code, name in AFFECTNET_CODES.items()}


@dataclass(frozen=True)
class LabelScheme:
    """Which expression codes a dataset keeps, and the class each one becomes.

    Args:
        name: the `--labels` value.
        class_names: output classes in model order.
        code_to_class: AffectNet code -> class name; codes not listed are outside the scheme.
        description: one line for `--help`.
    """

    name: str
    class_names: tuple[str, ...]
    code_to_class: Mapping[int, str] = field(repr=False)
    description: str = ""

    def class_of(self, code: int) -> str | None:
        """The class name of an expression code, or None when the scheme drops that code."""
        return self.code_to_class.get(code)

    def index_of(self, class_name: str) -> int:
        return self.class_names.index(class_name)


def _identity_scheme(name: str, codes: range, description: str) -> LabelScheme:
    names = tuple(AFFECTNET_CODES[c] for c in codes)
    return LabelScheme(name, names, {c: AFFECTNET_CODES[c] for c in codes}, description)


_POLARITY = {
    0: "Neutral",
    1: "Positive",
    3: "Positive",
    2: "Negative",
    4: "Negative",
    5: "Negative",
    6: "Negative",
    7: "Negative",
}

SCHEMES: Mapping[str, LabelScheme] = {
    s.name: s
    for s in (
        _identity_scheme("affectnet8", range(8), "the 8 expressions, codes 0-7 (default)"),
        _identity_scheme("affectnet7", range(7), "7 expressions: Contempt dropped"),
        LabelScheme(
            "affectnet7-merge",
            tuple(AFFECTNET_CODES[c] for c in range(7)),
            {**{c: AFFECTNET_CODES[c] for c in range(7)}, 7: "Neutral", 8: "Neutral", 9: "Neutral", 10: "Neutral"},
            "7 expressions: codes >= 7 become Neutral",
        ),
        _identity_scheme("affectnet11", range(11), "all 11 codes, None/Uncertain/NonFace included"),
        LabelScheme(
            "polarity3",
            ("Positive", "Neutral", "Negative"),
            _POLARITY,
            "Positive (Happy, Surprise) / Neutral / Negative (the other five)",
        ),
    )
}


def get_scheme(name: str) -> LabelScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown label scheme {name!r}; choose one of {', '.join(SCHEMES)}") from None


# Folder names met in the wild (FER2013, RAF-DB, re-packaged AffectNet) -> AffectNet code.
_SYNONYMS = {
    "neutral": 0,
    "happy": 1,
    "happiness": 1,
    "sad": 2,
    "sadness": 2,
    "surprise": 3,
    "surprised": 3,
    "fear": 4,
    "fearful": 4,
    "disgust": 5,
    "disgusted": 5,
    "anger": 6,
    "angry": 6,
    "contempt": 7,
    "none": 8,
    "uncertain": 9,
    "unknown": 9,
    "nonface": 10,
    "non-face": 10,
    "non_face": 10,
}


def code_of_folder(name: str, class_map: Mapping[str, str] | None = None) -> int | None:
    """AffectNet code for a class-folder name, after an optional user mapping; None if unknown."""
    name = (class_map or {}).get(name, name)
    if name.isdigit():
        code = int(name)
        return code if code in AFFECTNET_CODES else None
    return _SYNONYMS.get(name.strip().lower())


POLARITIES = SCHEMES["polarity3"].class_names  # Positive, Neutral, Negative


def polarity_of(class_names) -> list[int]:
    """Each class's polarity index under the polarity3 scheme; ValueError for a class it has no polarity
    for (None / Uncertain / NonFace)."""
    code_of = {name: code for code, name in AFFECTNET_CODES.items()}
    scheme, out = SCHEMES["polarity3"], []
    if set(class_names) <= set(POLARITIES):
        raise OptionError(
            "task",
            f"hierarchical: the data is already labelled by polarity ({', '.join(class_names)});"
            f" the hierarchical task predicts expressions within polarities, so it needs data "
            f"prepared with expression labels (e.g. --labels affectnet8), or train --task "
            f"expression on this data",
        )
    for name in class_names:
        polarity = scheme.class_of(code_of.get(name, -1))
        if polarity is None:
            raise OptionError(
                "task",
                f"hierarchical: class {name} has no polarity (polarity3 groups "
                f"{', '.join(AFFECTNET_CODES[c] for c in sorted(scheme.code_to_class))})",
            )
        out.append(POLARITIES.index(polarity))
    return out


def polarity_matrix(groups):
    """(classes, 3) one-hot: which polarity each class belongs to (class targets @ it = polarity targets)."""
    import numpy as np

    return np.eye(len(POLARITIES), dtype="float32")[np.asarray(groups, int)]
