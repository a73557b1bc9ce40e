#!/usr/bin/env python
"""The class-imbalance study: one run per strategy and Table 7; see `python study.py --help`."""

from affect_keras.cli.study import main

if __name__ == "__main__":
    raise SystemExit(main())
