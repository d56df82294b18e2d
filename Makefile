# The two commands of the quick start, and the benchmark.
#   make demo    runs the etl example flow end to end with `weft run`
#   make test    runs every test
#   make bench   measures what orchestration costs (release build): writes
#                target/bench/results.md and results.json
#   make bench-prefect   the same workloads in weft and in Prefect 3, side by
#                side (Prefect installed in a throwaway virtualenv)
#   make static  builds the static release binary the Dockerfile ships
# Each installs what it needs first and can be run again at any time.
#
# On Linux, weft builds for the static (musl) target: the binary the demo
# and every test run is the one the weft image ships.

CARGO ?= cargo
GUESTS := target/guests
ifeq ($(shell uname -s),Linux)
TARGET ?= $(shell uname -m)-unknown-linux-musl
else
TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
endif
WEFT := target/$(TARGET)/debug/weft
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench bench-prefect static setup

# Flows build for wasm32-wasip2; the static binary needs the musl target and
# a musl C compiler for the crates that build C (Debian's musl-tools).
setup:
	@for target in wasm32-wasip2 $(TARGET); do \
		if ! rustup target list --installed 2>/dev/null | grep -qx $$target; then \
			rustup target add $$target || exit 1; \
		fi; \
	done
	@case "$(TARGET)" in *-musl) \
		if ! command -v musl-gcc > /dev/null; then \
			$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y musl-tools \
				|| { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y musl-tools; } || exit 1; \
		fi;; \
	esac

# The etl example, twice on the embedded default (store in ~/.weft, local
# processes): once with `weft run`, then through a deployment and an agent.
demo: setup
	$(CARGO) build -p weft-cli --target $(TARGET)
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
# tests start and stop them on ports of their own. The Python components the
# tests run are built with componentize-py, which tests/toolchains/install.sh
# puts in target/toolchains/. The UI tests drive Debian's chromium over
# chromedriver, which tests/browser/install.sh installs. The integration
# tests run target/$(TARGET)/debug/weft, built first.
test: setup
	tests/emulators/install.sh
	tests/toolchains/install.sh
	tests/browser/install.sh
	$(CARGO) build -p weft-cli --target $(TARGET)
	$(CARGO) test --workspace --target $(TARGET)

# Each benchmark adds its figures to target/bench/results/ and renders the
# table from every figure there.
BENCHES := engine cli stores agent kubernetes guests output_caps ui
bench: setup
	tests/emulators/install.sh
	tests/toolchains/install.sh
	$(CARGO) build --release -p weft-cli
	$(CARGO) bench -p weft-tests $(BENCHES:%=--bench %)
	@echo "== the table: target/bench/results.md (and results.json)"

# Prefect first, then weft's side, which renders the table with both.
bench-prefect: setup
	tests/toolchains/install.sh
	tests/prefect/install.sh
	$(CARGO) build --release -p weft-cli
	target/prefect/venv/bin/python tests/prefect/bench.py
	$(CARGO) bench -p weft-tests --bench compare
	@echo "== the table: target/bench/results.md (and results.json)"

# What the Dockerfile builds, checked by running a flow with it.
static: setup
	$(CARGO) build --release --target $(TARGET) -p weft-cli
	$(CARGO) build --release --target wasm32-wasip2 \
		--manifest-path examples/hello/Cargo.toml --target-dir $(GUESTS)
	WEFT_HOME=target/static-home target/$(TARGET)/release/weft run \
		$(GUESTS)/wasm32-wasip2/release/hello.wasm --param name=static
