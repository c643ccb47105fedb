# One `make check` for developers and CI: lint, types, tests.
PY := .venv/bin
PACKAGES := daq drivers simulators dashboards

.PHONY: check lint types test bench demo

check: lint types test

lint:
	$(PY)/ruff check $(PACKAGES) tests benchmarks
	$(PY)/ruff format --check $(PACKAGES) tests benchmarks

types:
	$(PY)/mypy --strict $(PACKAGES)

test:
	$(PY)/pytest

bench:
	$(PY)/python benchmarks/poll_rate.py
	$(PY)/python benchmarks/forwarder.py

demo:
	$(PY)/daq demo
