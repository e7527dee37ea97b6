# Entry points of the NPU project. Every target creates .venv and installs the project first.
#   make sim    generate Verilog, run the cocotb regression on Verilator, print a summary
#   make test   run the whole test suite (Verilator, and Icarus when iverilog is on PATH)
# Variables: PYTHON (interpreter for the venv, 3.11+), NPU_SEED (re-run a random seed),
#            SIM=verilator|icarus|all and N="4 8" for make sim.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SIM ?= verilator
N ?= 4 8

.PHONY: all sim test clean distclean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $@

sim: $(STAMP)
	$(VPY) -m sim.regress --simulator $(SIM) --n $(N)

test: $(STAMP)
	$(VPY) -m pytest

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
