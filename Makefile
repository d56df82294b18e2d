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

demo: setup
	$(CARGO) build -p weft
	$(CARGO) build --release --target wasm32-wasip2 \
		--manifest-path examples/etl/Cargo.toml --target-dir $(GUESTS)
	$(WEFT) run $(GUESTS)/wasm32-wasip2/release/etl.wasm

# The store tests run against moto (S3), Azurite (Azure Blob) and
# fake-gcs-server (GCS); install.sh puts them in target/emulators/ and the
# tests start and stop them on ports of their own.
test: setup
	tests/emulators/install.sh
	$(CARGO) build -p weft
	$(CARGO) test --workspace

bench: setup
	$(CARGO) bench -p weft-tests
