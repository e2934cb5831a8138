# Herald in Alertmanager's place: same entrypoint flags, paths, port and
# user as the prom/alertmanager image, so compose files only change the image.

FROM rust:1-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Dependencies first, in their own cached layer: a change to Herald's code
# rebuilds only Herald. Every target Cargo.toml declares needs a file here,
# or cargo refuses the manifest, so each [[bench]] gets a stub by its name
# (a bench added later cannot break this layer).
# .cargo/config.toml carries the allocator's compiled-in options.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && sed -n '/^\[\[bench\]\]/{n;s/^name = "\(.*\)"$/\1/p}' Cargo.toml \
       | while read -r bench; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY templates templates
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin herald

# The runtime file system, assembled from Debian: Herald, the shared
# libraries it links (found by ldd, so any architecture works), the CA
# bundle, the time zone database, and busybox for the `sh` and `wget`
# that prom/alertmanager's busybox base gives (health checks written for
# Alertmanager's image keep working). Nothing else: no package manager,
# no interpreter.
FROM debian:bookworm-slim AS rootfs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian security updates replace pinned versions, so packages are not
# pinned (the base image tag pins the release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata busybox-static \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/herald /rootfs/bin/herald
COPY config/herald.yml /rootfs/etc/alertmanager/alertmanager.yml
WORKDIR /rootfs
RUN ldd bin/herald | grep -o '/[^ ]*' | sort -u | while read -r lib; do cp --parents -L "$lib" .; done \
    && cp /bin/busybox bin/busybox \
    && bin/busybox --list | grep -vx busybox | while read -r applet; do ln -s busybox "bin/$applet"; done \
    && mkdir -p etc/ssl/certs usr/share alertmanager tmp \
    && cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/ \
    && cp -a /usr/share/zoneinfo usr/share/ \
    && printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > etc/passwd \
    && printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group \
    && chmod 1777 tmp

FROM scratch
COPY --from=rootfs /rootfs /
# A copy between stages does not carry ownership over (and --chown would
# not reach the folder itself): the data folder, the one path the image's
# user writes, is handed to it with the image's own busybox.
RUN ["/bin/busybox", "chown", "65534:65534", "/alertmanager"]
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
