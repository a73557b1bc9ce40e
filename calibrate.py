#!/usr/bin/env python
"""Fit the calibration temperature of a run, preset or .keras file; see `python calibrate.py --help`."""

from affect_keras.cli.calibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
