#!/usr/bin/env python
"""Train an expression classifier; see `python train.py --help`."""

from affect_keras.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
