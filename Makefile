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

# Every benchmark, each against its anchors in the same run (about 25 minutes; figures in bench/RESULTS.md).
# Not part of `make test`: CI runs only the cheap ratio guards in tests/bench.
bench: bootstrap
	@scripts/bootstrap.sh --services
	$(PY) bench/http_throughput.py
	$(PY) bench/pg_bulk_load.py
	$(PY) bench/pg_pool.py
	$(PY) bench/batch_api.py
	$(PY) bench/streaming.py
	$(PY) bench/trigger_density.py

gen-provider-info: bootstrap
	$(PY) scripts/gen_provider_info.py

# Re-pin after changing dependencies in pyproject.toml (then commit constraints.txt).
constraints:
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > constraints.txt
