# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall only when pyproject.toml changes: a second `make run` starts at once.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: venv run test demo bench faults lint format migrate demo-data clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools' "Editable installation" box only says not to shadow the package: silenced.
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

run: venv
	@PY=$(PY) bash scripts/run.sh

test: venv
	@PY=$(PY) bash scripts/test.sh

demo: venv
	@PY=$(PY) bash scripts/demo.sh

# The end-to-end benchmark (not part of `make test`, which runs its --smoke version).
bench: venv
	$(PY) bench/bench_pipeline.py $(BENCH_ARGS)

# The fault suite alone on PostgreSQL, then its measured figures into the README's table.
faults: venv
	DATABASE_URL=$${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_TEST_URL=$${REDIS_TEST_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest -m faults tests/integration
	$(PY) scripts/faults_table.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: venv
	$(PY) manage.py migrate

demo-data: migrate
	$(PY) manage.py seed_demo

clean:
	rm -rf var/ .pytest_cache
