# syntax=docker/dockerfile:1
#
# The trustgate server image: the release binary on a slim Debian runtime, non-root.
#
#   docker build -t <registry>/<path>/trustgate:0.1.0 .
#
# Not built in this repository's CI (its machines have no container engine); kept correct by
# reading. What it relies on, checked against the code:
# - The release binary links only glibc and libgcc_s (aws-lc-rs is compiled in with the C
#   compiler of the builder image; no OpenSSL, no cmake needed), which every Debian image
#   ships. Builder and runtime are both Debian 12 (bookworm), so the glibc versions match.
# - Registry TLS trusts the compiled-in webpki roots (plus --registry-ca), so the runtime
#   needs no CA bundle; the image's own is there anyway.
# - The server writes no files (read-only root filesystem in the chart).
# The cache mounts need BuildKit (the default builder of Docker >= 23 and of buildah/podman).

# Base images, overridable for a mirror or a distroless "cc" runtime (--build-arg
# BUILDER_IMAGE=... RUNTIME_IMAGE=...). Keep both on the same Debian release.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
# The context .dockerignore leaves: Cargo.toml, Cargo.lock, src/, benches/ (Cargo.toml
# declares a bench target, so cargo refuses to load the manifest without benches/), and
# any build.rs added later.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin trustgate \
 && cp target/release/trustgate /trustgate

FROM ${RUNTIME_IMAGE}
COPY --from=build /trustgate /trustgate
# A numeric non-root user, so the chart's runAsNonRoot can verify it.
USER 65532:65532
# 8443: HTTPS webhook (POST /validate); 8080: plain-HTTP /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/trustgate"]
CMD ["serve"]
