# Herald in Alertmanager's place: same entrypoint flags, paths, port and
# user as the prom/alertmanager image, so compose files only change the image.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, in their own cached layer: a change to Herald's code
# rebuilds only Herald. Every target Cargo.toml declares needs a stub file
# here, or cargo refuses the manifest.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/compare.rs \
    && echo 'fn main() {}' > benches/ha_soak.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY templates templates
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin herald

FROM debian:bookworm-slim
# Debian security updates replace pinned versions, so packages are not
# pinned (the base image tag pins the release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/alertmanager /alertmanager \
    && chown nobody:nogroup /alertmanager
COPY --from=build /src/target/release/herald /bin/herald
COPY config/herald.yml /etc/alertmanager/alertmanager.yml
USER 65534:65534
WORKDIR /alertmanager
EXPOSE 9093
VOLUME ["/alertmanager"]
# A 401 counts as healthy (the server answers; only the check has no
# password). With TLS on, override it with
# `herald healthcheck --url https://127.0.0.1:9093/-/healthy --tls-skip-verify`.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/herald", "healthcheck"]
ENTRYPOINT ["/bin/herald"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
