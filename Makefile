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

# The shipped photo model (src/fashion/models/photo.keras, its record and calibration): four
# `fashion adapt` runs on the same held-out photos (seed:epochs), averaged. A finished run is
# kept, so the target resumes where it stopped.
PHOTOS ?= ../shared/data/clothing-photos
PHOTO_RUNS ?= 42:30 42:60 1:60 2:60
photo-model: setup
	for run in $(PHOTO_RUNS); do seed=$${run%:*}; epochs=$${run#*:}; \
	  test -f runs/photo-model-$$seed-$$epochs/metrics.json || $(VENV)/bin/fashion adapt \
	    $(PHOTOS) --seed $$seed --epochs $$epochs --out runs/photo-model-$$seed-$$epochs \
	    || exit 1; \
	done
	$(PY) scripts/ship_model.py --name photo \
	  $(foreach run,$(PHOTO_RUNS),runs/photo-model-$(subst :,-,$(run)))

# The documentation site at http://127.0.0.1:8000, rebuilt as its pages change.
docs: setup
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
