# The weft image: one static (musl) release binary on a distroless base,
# running as a non-root user. It is what `weft agent --infra kubernetes` runs
# in each flow run's Job (`weft runner --run <id>`) and what
# `weft agent install` deploys the agent with.
#
#   docker build -t registry.example.com/weft:0.1.0 .
#
# The binary is the one `make static` builds and runs a flow with (every
# test runs the same target in its debug profile), less its debug info; on
# an arm64 builder the same steps make an arm64 image.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --locked --release --target "$target" -p weft-cli \
    && strip --strip-debug -o /weft "target/$target/release/weft"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /weft /usr/local/bin/weft
# The compile cache; the base job template mounts an emptyDir at /tmp.
ENV WEFT_HOME=/tmp/weft
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/weft"]
