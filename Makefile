# Two commands for a fresh Linux machine with Python 3.11:
#   make run    set up .venv and start the dashboard and the API on http://127.0.0.1:8501
#   make test   set up .venv with the test tools and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: run test install install-dev bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is installed on its own first so the CPU build is chosen; the other
# requirements then see it as already satisfied.
$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet "$$(grep -E '^torch==' requirements.txt)"
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-ray.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/streamlit run serve.py --server.address $(HOST) --server.port $(PORT)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python bench/bench_decode.py

clean:
	rm -rf $(VENV)
