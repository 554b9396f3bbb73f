# Casebank: `make run` starts a populated demo archive, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= casebank-data

.PHONY: run test venv debian-packages clean

$(BIN)/casebank: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9 || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[test]'
	touch $@

venv: $(BIN)/casebank

debian-packages:
	scripts/ensure-debian-packages

run: venv
	$(BIN)/casebank demo --data $(DATA) --http 127.0.0.1:8000

test: venv debian-packages
	TCP_NODELAY=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
