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

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
