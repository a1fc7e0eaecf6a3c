# The two commands of the README: `make demo` and `make test`.
# Each creates the project-local virtual environment .venv on first use and
# installs exactly the versions in requirements.lock (then robocell itself,
# editable, without resolving anything). pyproject.toml keeps lower bounds for
# library users; `make lock` refreshes the lock from them. constraints.txt pins
# the CPU build of torch so no extra ever pulls a multi-GB CUDA wheel.

SHELL  := bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
EXTRAS := dev lang ray
STAMP  := $(VENV)/.installed
# Debian packages the tests use: a virtual X display for the GUI tests, a browser
# for the HTML report tests. Installed by `make system` when missing (needs root).
APT_PACKAGES := xvfb x11-apps libxtst6 libgl1-mesa-dri chromium
APT_COMMANDS := Xvfb xwd chromium

.PHONY: demo test test-load bench venv lock system clean

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep -m1 '^pip==' $(LOCK))"
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $@

# Refresh the lock after changing dependencies in pyproject.toml (commit the result).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	    $(addprefix --extra ,$(EXTRAS)) -c constraints.txt -o $(LOCK) pyproject.toml

system:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null || missing=yes; done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "installing Debian packages: $(APT_PACKAGES)"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	    else \
	        echo "the GUI and browser tests need: $(APT_PACKAGES); install them (sudo apt-get install $(APT_PACKAGES)) or they are skipped"; \
	    fi; \
	fi

demo: $(STAMP)
	$(BIN)/robocell demo

test: $(STAMP) system
	$(BIN)/python -m pytest -q

# The suite with two CPU-bound processes beside it, as on a shared CI machine:
# it must pass like the quiet run.
test-load: $(STAMP) system
	@$(PYTHON) -c 'while True: pass' & b1=$$!; $(PYTHON) -c 'while True: pass' & b2=$$!; \
	trap "kill $$b1 $$b2" EXIT; echo "two busy loops: pids $$b1 $$b2"; \
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
