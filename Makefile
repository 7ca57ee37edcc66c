# `make run` and `make test` are the two commands of the README's quick start.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
# Keras's backend to install: tensorflow (Keras's default), jax or torch.
BACKEND ?= tensorflow

.PHONY: setup run test lint clean docs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(BACKEND),dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/fashion run $(ARGS)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(ARGS)

# The documentation site at http://127.0.0.1:8000, rebuilt as its pages change.
docs: setup
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
