#!/usr/bin/env python
"""Evaluate a trained model or compare runs; see `python evaluate.py --help`."""

from affect_keras.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
