# The user-facing commands. Everything installs into .venv with pip (Poetry users: `poetry install`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train sweep test check docs lint fonts generate download info bench lm predict serve loadtest clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools (idempotent)

fonts: $(STAMP) ## fetch the font pool and the English sentences with npm into data/ (skips what is there)
	$(BIN)/text-recognizer-data fonts

generate: fonts ## build every dataset whose sources are present, and the default LM (skips what is done)
	$(BIN)/text-recognizer-data generate
	$(BIN)/text-recognizer lm train --if-missing

download: $(STAMP) ## download and verify EMNIST, IAM (and Brown, with nltk); skips what is there
	$(BIN)/text-recognizer-data download

info: $(STAMP) ## print dataset info and save a sample grid to runs/samples.png
	$(BIN)/text-recognizer-data info --grid runs/samples.png

train: generate ## train the default experiment; pass Hydra overrides with ARGS="..."
	$(BIN)/python main.py $(ARGS)

sweep: generate ## an Optuna sweep of the default experiment: make sweep ARGS="hydra.sweeper.n_trials=20"
	$(BIN)/python main.py -m hparams_search=synthetic_lines_optuna $(ARGS)

test: $(STAMP) ## run the test suite (what CI runs)
	$(BIN)/python -m pytest -q

check: $(STAMP) ## nox: lint, typecheck, tests and the docs build
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nox

docs: $(STAMP) ## build the documentation site into site/ (strict); preview it: make docs ARGS=serve
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs $(or $(ARGS),build --strict)

bench: $(STAMP) ## decode, training-step and prediction speed; with CKPT=... quality and held-out sets
	$(BIN)/python -m benchmarks.decode
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.predict
	@if [ -n "$(CKPT)" ]; then $(BIN)/python -m benchmarks.quality --checkpoint $(CKPT) $(ARGS) && \
	$(BIN)/python -m benchmarks.heldout --checkpoint $(CKPT); \
	else echo "quality (greedy, beam, beam + LM, int8) and the held-out sets: make bench CKPT=runs/<run>/checkpoints/best.ckpt"; fi

lm: $(STAMP) ## build the default character language model again, from the synthetic text: data/lm/synthetic.arpa
	$(BIN)/text-recognizer lm train

predict: $(STAMP) ## print the text of images: make predict CKPT=path/best.ckpt IMAGE=file-or-folder
	@test -n "$(CKPT)" -a -n "$(IMAGE)" || { echo "usage: make predict CKPT=... IMAGE=..."; exit 2; }
	$(BIN)/text-recognizer predict --checkpoint $(CKPT) $(IMAGE)

serve: $(STAMP) ## the HTTP API and web page on 127.0.0.1:8000: make serve CKPT=path/best.ckpt
	@test -n "$(CKPT)" || { echo "usage: make serve CKPT=... [ARGS=\"--port 8080 --token ...\"]"; exit 2; }
	$(BIN)/text-recognizer serve --checkpoint $(CKPT) $(ARGS)

loadtest: $(STAMP) ## Locust against local servers, batching on and off: make loadtest CKPT=path/best.ckpt
	@test -n "$(CKPT)" || { echo "usage: make loadtest CKPT=... [ARGS=\"--seconds 20\"]"; exit 2; }
	$(BIN)/python -m benchmarks.serve --checkpoint $(CKPT) $(ARGS)

clean: ## remove the virtualenv and caches (keeps data and runs)
	rm -rf $(VENV) .nox .mypy_cache .ruff_cache .pytest_cache
