# Two commands from a fresh clone: `make demo` and `make test`. Both create the virtual environment.
PYTHON ?= python3
VENV ?= .venv
# Which TensorFlow build to install: cpu (tensorflow-cpu) or tf (tensorflow, e.g. for a GPU machine).
TF_EXTRA ?= cpu
# Test-only references, never dependencies of the package: timm's ResNets (on the CPU build of torch
# that lies on this project's machines; plain `torch` would pull several GB of CUDA packages) check the
# ImageNet ResNet18/34 loading. timm without its dependencies: it needs torchvision only for parts the
# tests do not use, and the tests stub it.
TEST_TORCH ?= torch==2.13.0
TEST_TIMM ?= timm==1.0.31
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(TF_EXTRA)
DEMO ?= build/demo

.PHONY: venv demo test quick clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(TF_EXTRA),dev]'
	$(BIN)/python -m pip install --quiet $(TEST_TORCH)
	$(BIN)/python -m pip install --quiet --no-deps $(TEST_TIMM)
	touch $@

# The demo prepares the sample, trains ResNet18 from scratch at 32 px with a linear head, exports a
# SavedModel, evaluates, and predicts one face with the export: about a minute and a half on two CPU cores.
demo: $(STAMP)
	$(BIN)/python prepare_dataset.py --source sample --count 2000 --size 64 --balance-eval 25 --out $(DEMO)/data
	$(BIN)/python train.py --data $(DEMO)/data --backbone resnet18 --weights none --image-size 32 \
		--augment none --dense= --dropout 0 --no-head-batch-norm --l2 0 --epochs 2 --run-dir $(DEMO)/run \
		--export saved_model
	$(BIN)/python evaluate.py $(DEMO)/run --data $(DEMO)/data --split test
	$(BIN)/python predict.py $$(ls $(DEMO)/data/test/Happy/*.jpg | head -n 1) --no-detect \
		--model $(DEMO)/run/export/saved_model

# Two pytest workers (one per core here; -n auto takes every core), a test file per worker at a time so
# that a file's shared fixtures are built once: 23 % less wall time than one worker on this 2-core machine.
PYTEST = $(BIN)/python -m pytest -n auto --dist loadfile

test: $(STAMP)
	$(PYTEST)

# For iteration: everything but the minutes-long learning, resume and benchmark tests (marked slow).
quick: $(STAMP)
	$(PYTEST) -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info
