# The two commands of the README. Each installs what is missing first.
.PHONY: run test test-cluster install lint bench stop

install:
	@bash scripts/install.sh

run: install
	@bash scripts/run.sh

test: install
	@bash scripts/test.sh

# The fault tier: a three-node RabbitMQ cluster, two replicas of every service, nodes and
# replicas killed and paused under load (tests/cluster). `make test` runs it last too.
test-cluster: install
	@bash scripts/test_cluster.sh

lint: install
	uv run ruff check . && uv run ruff format --check . && uv run mypy

bench: install
	@bash scripts/bench.sh

stop:
	@LOOKOUT_STACK=dev bash scripts/stack.sh stop
