# The two commands of the README:
#   make demo   set up, generate the shapes data, pretrain, fine-tune, evaluate (CPU, minutes)
#   make test   set up and run the test suite
#
# Set-up: inside an activated virtualenv (VIRTUAL_ENV set) that venv is used; otherwise the
# project's own .venv is created with `$(PYTHON) -m venv` (stock Debian/Ubuntu Pythons refuse
# pip into the system interpreter, PEP 668). mmft is installed into it once; it is installed
# again only when setup.py, setup.cfg or requirements/*.txt change.
PYTHON ?= python3
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmft-installed

.PHONY: install demo test

install: $(STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV) || { echo 'make: "$(PYTHON) -m venv" failed: on Debian/Ubuntu' \
	    'install the venv module (sudo apt install python3-venv), or name another Python' \
	    'with make PYTHON=/path/to/python3.11' >&2; rm -rf $(VENV); exit 1; }

$(STAMP): setup.py setup.cfg $(wildcard requirements/*.txt) | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[tests]'
	touch $@

demo: install
	$(VENV_PYTHON) tools/misc/run_demo.py --work-dir $(DEMO_DIR)

test: install
	$(VENV_PYTHON) -m pytest -q $(PYTEST_ARGS) tests
