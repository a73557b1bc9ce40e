#!/usr/bin/env python
"""Expressions of the faces in an image, folder or video; see `python predict.py --help`."""

from affect_keras.cli.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
