# Operator image: the rbox-operator binary plus the librados it links against (Debian 12's
# 16.2 "pacific"), running as a non-root user. Build from the repository root:
#   docker build -t ghcr.io/rbox-operator/rbox-operator:0.1.0 .
# (No Docker engine exists on the development machines; CI of this repository builds the
# binary with the same toolchain and Debian packages, see docs/operations.md.)

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librados-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY rbox-core rbox-core
COPY operator operator
RUN cargo build --release --locked -p rbox-operator -p rbox-core --bins \
 && install -D target/release/rbox-operator /out/rbox-operator \
 && (install -D target/release/rbox /out/rbox 2>/dev/null || true)

FROM debian:bookworm-slim
# dovecot-core provides doveconf: every generated dovecot.conf is checked with Dovecot's own
# parser before it reaches a fleet (docs/dovecot.md). Nothing of Dovecot runs here.
RUN apt-get update && apt-get install -y --no-install-recommends librados2 ca-certificates dovecot-core \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 65532 rbox && useradd -u 65532 -g 65532 -M -s /usr/sbin/nologin rbox
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rbox-operator"]
CMD ["run"]
