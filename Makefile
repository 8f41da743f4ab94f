# The two commands of README.md. Each sets up what it needs first (scripts/setup.sh, idempotent).
.PHONY: run test

run:
	@scripts/setup.sh
	@.venv/bin/resnet-gui $(ARGS)

# pytest's exit code 5 means no test was collected: that is a failure, said in words.
test:
	@scripts/setup.sh --test
	@.venv/bin/ruff check resnet_gui tests benchmarks scripts
	@.venv/bin/python scripts/typecheck.py
	@.venv/bin/python -m pytest $(PYTEST_ARGS); status=$$?; \
	 if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$status
