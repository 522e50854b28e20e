# The two commands of the README:
#   make demo   set up, generate the shapes data, pretrain, fine-tune, evaluate (CPU, minutes)
#   make test   set up and run the test suite
PYTHON ?= python
DEMO_DIR ?= work_dirs/demo

.PHONY: install demo test

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[tests]'

demo: install
	$(PYTHON) tools/misc/run_demo.py --work-dir $(DEMO_DIR)

test: install
	$(PYTHON) -m pytest -q tests
