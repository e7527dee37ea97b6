# Entry points of the NPU project. Every target creates .venv and installs the project first.
#   make sim    generate Verilog, run the cocotb regression on Verilator, print a summary
#   make test   run the whole test suite (Verilator, and Icarus when iverilog is on PATH)
#   make bench  utilization and simulation speed on Verilator: build/bench/report.json + PNG
#   make synth  synthesis + place and route (yowasp), build/synth/report.json, docs/synthesis.md
#   make synth-check  the synthesis regression guard (CI): synth/baseline.json, +-10%
# Variables: PYTHON (interpreter for the venv, 3.11+), NPU_SEED (re-run a random seed),
#            SIM=verilator|icarus|all and N="4 8" for make sim;
#            N=8 DEVICE=85k|45k|25k|up5k SEEDS=5 DESIGN=npu|core JOBS=<seeds at once,
#            default the cores> for make synth;
#            N=8 QUICK=1 (shapes up to 256) for make bench.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SIM ?= verilator
DEVICE ?= 85k
SEEDS ?= 5
DESIGN ?= npu

.PHONY: all sim test bench synth synth-check clean distclean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $@

sim: $(STAMP)
	$(VPY) -m sim.regress --simulator $(SIM) --n $(or $(N),4 8)

bench: $(STAMP)
	$(VPY) -m sim.bench $(if $(QUICK),--quick) --n $(or $(N),8)

synth: $(STAMP)
	$(VPY) -m synth.run --n $(or $(N),8) --device $(DEVICE) --seeds $(SEEDS) --design $(DESIGN) \
		$(if $(JOBS),--jobs $(JOBS))

synth-check: $(STAMP)
	$(VPY) -m synth.check

test: $(STAMP)
	$(VPY) -m pytest

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
