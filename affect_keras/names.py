"""The names the stages share through files, in the bottom layer so that every layer may read them:
what a run directory holds, and which export formats exist (each format's builder is `deploy.export`'s
`FORMATS` registry, whose names a test holds equal to these)."""

CLASS_NAMES = "class_names.json"  # the class order train.py writes into the run directory
EXPORT_FORMATS = ("saved_model", "keras", "tflite", "onnx")
