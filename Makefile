# The two commands of README.rst: `make demo` and `make test`. Both set up everything they need.
.PHONY: bootstrap demo test lint typecheck unit bench gen-provider-info constraints

VENV := .venv
PY := $(VENV)/bin/python

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(PY) scripts/run_examples.py

test: bootstrap
	@scripts/bootstrap.sh --services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/gen_provider_info.py --check
	$(VENV)/bin/mypy
	$(PY) -m pytest -p no:cacheprovider

lint: bootstrap
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: bootstrap
	$(VENV)/bin/mypy

bench: bootstrap
	$(PY) bench/http_throughput.py

gen-provider-info: bootstrap
	$(PY) scripts/gen_provider_info.py

# Re-pin after changing dependencies in pyproject.toml (then commit constraints.txt).
constraints:
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > constraints.txt
