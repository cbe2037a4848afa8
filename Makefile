# The two commands of the README. Each installs what is missing first.
.PHONY: run test install lint bench stop

install:
	@bash scripts/install.sh

run: install
	@bash scripts/run.sh

test: install
	@bash scripts/test.sh

lint: install
	uv run ruff check . && uv run ruff format --check . && uv run mypy

bench: install
	@bash scripts/bench.sh

stop:
	@LOOKOUT_STACK=dev bash scripts/stack.sh stop
