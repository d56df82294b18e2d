# The two commands of the quick start, and the benchmark.
#   make demo   runs the etl example flow end to end with `weft run`
#   make test   runs every test
#   make bench  measures what orchestration costs (release build)
# Each installs what it needs first and can be run again at any time.

CARGO ?= cargo
GUESTS := target/guests
WEFT := target/debug/weft

.PHONY: demo test bench setup

# Flows build for wasm32-wasip2; the Rust toolchain needs that target.
setup:
	@if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then \
		rustup target add wasm32-wasip2; \
	fi

# The etl example, twice on the embedded default (store in ~/.weft, local
# processes): once with `weft run`, then through a deployment and an agent.
demo: setup
	$(CARGO) build -p weft
	for flow in etl hello; do \
		$(CARGO) build --release --target wasm32-wasip2 \
			--manifest-path examples/$$flow/Cargo.toml --target-dir $(GUESTS) || exit 1; \
	done
	@echo "== weft run: the etl flow, in this process"
	$(WEFT) run $(GUESTS)/wasm32-wasip2/release/etl.wasm
	@echo "== weft deploy, an agent, and weft deployment run --watch"
	$(WEFT) deploy -f examples/weft.yaml
	@$(WEFT) agent --name demo > target/demo-agent.log 2>&1 & agent=$$!; \
		$(WEFT) deployment run etl --watch; status=$$?; \
		kill $$agent; wait $$agent; \
		echo "== the agent's log (target/demo-agent.log)"; cat target/demo-agent.log; \
		exit $$status

# The store tests run against moto (S3), Azurite (Azure Blob) and
# fake-gcs-server (GCS); install.sh puts them in target/emulators/ and the
# tests start and stop them on ports of their own.
test: setup
	tests/emulators/install.sh
	$(CARGO) build -p weft
	$(CARGO) test --workspace

bench: setup
	$(CARGO) build --release -p weft
	$(CARGO) bench -p weft-tests
