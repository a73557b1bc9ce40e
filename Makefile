# Two commands from a fresh clone: `make demo` and `make test`. Both create the virtual environment.
PYTHON ?= python3
VENV ?= .venv
# Which TensorFlow build to install: cpu (tensorflow-cpu) or tf (tensorflow, e.g. for a GPU machine).
TF_EXTRA ?= cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(TF_EXTRA)
DEMO ?= build/demo

.PHONY: venv demo test clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(TF_EXTRA),dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/python prepare_dataset.py --source sample --count 2000 --size 64 --balance-eval 25 --out $(DEMO)/data

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
