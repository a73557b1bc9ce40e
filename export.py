#!/usr/bin/env python
"""Export a trained run; see `python export.py --help`."""

from affect_keras.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
