# syntax=docker/dockerfile:1
# The netsentinel runner image: the release binary and the project it runs (pipelines.yaml and
# sql/), as a non-root user. Build from the repository root:
#   docker build -t netsentinel .
# The first build compiles the bundled DuckDB (about 25 minutes on two cores); the cache mounts
# keep it for later builds on the same builder.

FROM rust:1.91-bookworm AS build
# The bundled DuckDB is C++; the rust image has g++ already, this makes the requirement explicit.
# Unpinned apt packages (DL3008): bookworm's security updates replace pinned versions, which would
# break the build; the base image tag is what pins the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY src/ src/
COPY benches/ benches/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin netsentinel \
    && install -m 0755 target/release/netsentinel /usr/local/bin/netsentinel

FROM debian:bookworm-slim
# ca-certificates: TLS to the Google APIs; libstdc++6: the C++ runtime the DuckDB engine links.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin netsentinel
WORKDIR /app
COPY --from=build /usr/local/bin/netsentinel /usr/local/bin/netsentinel
# The project is read-only to the runner; only what netsentinel writes under the project
# directory (.netsentinel/ for file sinks and the local target, target/ for compile) is its own.
COPY pipelines.yaml ./
COPY sql/ sql/
RUN mkdir .netsentinel target && chown netsentinel:netsentinel .netsentinel target
USER 10001:10001
ENV NETSENTINEL_PROJECT_DIR=/app
# A run-to-completion job, not a server: there is nothing for a HEALTHCHECK to probe, and Cloud
# Run ignores the instruction.
#checkov:skip=CKV_DOCKER_2:a batch job exits when done; Cloud Run ignores HEALTHCHECK
ENTRYPOINT ["netsentinel"]
CMD ["--help"]
