#!/usr/bin/env python
"""The prediction service: an HTTP API and a web page; see `python serve.py --help`."""

from affect_keras.cli.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
