# `make run` and `make test` are the two commands of the README's quick start.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
# Keras's backend to install: tensorflow (Keras's default), jax or torch.
BACKEND ?= tensorflow

.PHONY: setup run test check docs lint clean photo-model

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(BACKEND),dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/fashion run $(ARGS)

# Everything: lint, the import contract, the docs, and every test but the slow ones, on every
# core (tests/conftest.py orders them for the work-stealing scheduler).
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	$(VENV)/bin/pytest -n auto --dist worksteal $(ARGS)

# The fast tier, for every edit: lint, the import contract and the unit tests (no training run,
# no search, no process started).
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -n auto --dist worksteal -m "not integration and not slow" $(ARGS)

# The shipped photo model (src/fashion/models/photo.keras and its record), trained again from a
# folder of labelled photos: `fashion adapt`, then copied into the package.
PHOTOS ?= ../shared/data/clothing-photos
photo-model: setup
	$(VENV)/bin/fashion adapt $(PHOTOS) --epochs 60 --out runs/photo-model --overwrite
	$(PY) scripts/ship_model.py runs/photo-model --name photo

# The documentation site at http://127.0.0.1:8000, rebuilt as its pages change.
docs: setup
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
