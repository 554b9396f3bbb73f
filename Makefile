# Casebank: `make run` starts a populated demo archive, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= casebank-data

.PHONY: run test venv viewer ohif debian-packages clean

$(BIN)/casebank: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9 || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[test]'
	touch $@

venv: $(BIN)/casebank

# The browser viewer (Cornerstone3D from npm, bundled by Vite into ui/static/viewer/): installed
# again when the lock file changes, rebuilt when a source is newer than the bundle.
VIEWER         := ui/viewer
VIEWER_BUNDLE  := ui/static/viewer/viewer.js
VIEWER_MODULES := $(VIEWER)/node_modules/.package-lock.json

$(VIEWER_MODULES): $(VIEWER)/package.json $(VIEWER)/package-lock.json
	cd $(VIEWER) && npm ci --no-audit --no-fund
	touch $@

$(VIEWER_BUNDLE): $(VIEWER_MODULES) $(VIEWER)/vite.config.js $(wildcard $(VIEWER)/src/*)
	cd $(VIEWER) && npm run build
	touch $@

viewer: $(VIEWER_BUNDLE)

# The real OHIF v3 viewer for tests/ui/test_ohif_browser.py: the prebuilt app (dist/ of the npm
# package @ohif/app, about 50 MB to download, 204 MB unpacked, a few seconds) in .cache/ohif/.
OHIF     := .cache/ohif
OHIF_APP := $(OHIF)/node_modules/@ohif/app/dist/index.html

$(OHIF_APP): tests/ohif/package.json tests/ohif/package-lock.json
	mkdir -p $(OHIF)
	cp tests/ohif/package.json tests/ohif/package-lock.json $(OHIF)/
	npm ci --prefix $(OHIF) --no-audit --no-fund --ignore-scripts
	touch $@

ohif: $(OHIF_APP)

debian-packages:
	scripts/ensure-debian-packages

run: venv viewer
	$(BIN)/casebank demo --data $(DATA) --http 127.0.0.1:8000

test: venv debian-packages viewer ohif
	TCP_NODELAY=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache ui/static/viewer $(VIEWER)/node_modules $(OHIF)
