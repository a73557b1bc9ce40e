#!/usr/bin/env python
"""Prepare a facial-expression dataset as class folders; see `python prepare_dataset.py --help`."""

from affect_keras.cli.prepare import main

if __name__ == "__main__":
    raise SystemExit(main())
