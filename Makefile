# The two commands of the README: `make demo` and `make test`.
# Each creates the project-local virtual environment .venv on first use.
# Later extras (language model, Ray) join EXTRAS; constraints.txt pins the
# CPU build of torch so no extra ever pulls a multi-GB CUDA wheel.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
comma  := ,
EXTRAS ?= dev,lang,ray
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

demo: $(STAMP)
	$(BIN)/robocell demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_ik.py
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_pick_place.py
	$(BIN)/python benchmarks/bench_teach.py
	$(BIN)/python benchmarks/bench_eval_scale.py

clean:
	rm -rf $(VENV) build dist *.egg-info out
