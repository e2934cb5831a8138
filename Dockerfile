# Herald in Alertmanager's place: same entrypoint flags, paths, port and
# user as the prom/alertmanager image, so compose files only change the image.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, in their own cached layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/compare.rs \
    && cargo build --release --locked && rm -rf src benches
COPY src src
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin herald

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/alertmanager /alertmanager && chown nobody:nogroup /alertmanager
COPY --from=build /src/target/release/herald /bin/herald
COPY config/herald.yml /etc/alertmanager/alertmanager.yml
USER nobody
WORKDIR /alertmanager
EXPOSE 9093
VOLUME ["/alertmanager"]
# bash's /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9093 && printf 'GET /-/healthy HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/bin/herald"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
