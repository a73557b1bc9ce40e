"""Finding faces with OpenCV's Haar cascade (it ships inside the opencv wheel: nothing is downloaded)
and cropping them the way prepare_dataset.py crops a face box."""

from __future__ import annotations

import numpy as np
from PIL import Image

from affect_keras.data.images import crop_box

CASCADE = "haarcascade_frontalface_default.xml"


class FaceDetector:
    def __init__(self, min_size: int = 24):
        import cv2
        self._cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} did not load from {cv2.data.haarcascades}")
        self.min_size = min_size

    def __call__(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, width, height), largest first."""
        gray = self._cv2.equalizeHist(self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY))
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(self.min_size, self.min_size))
        return sorted((tuple(int(v) for v in box) for box in boxes), key=lambda b: -b[2] * b[3])


def face_crops(rgb: np.ndarray, boxes, size: int, margin: float) -> np.ndarray:
    """(faces, size, size, 3) uint8 crops of `boxes` widened by `margin`, as prepare_dataset.py does."""
    image = Image.fromarray(rgb)
    crops = [np.asarray(crop_box(image, box, margin).resize((size, size), Image.Resampling.BILINEAR))
             for box in boxes]
    return np.stack(crops).astype(np.uint8) if crops else np.zeros((0, size, size, 3), np.uint8)
