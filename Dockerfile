# t5serve container image: a multi-stage build on Debian bookworm.
# Stage 1 (build) compiles build/t5serve with the -dev packages; stage 2 (runtime) holds only
# the binary, the shared libraries it links (from Debian's runtime packages), the default
# configuration file and the default model, and runs as a non-root user. About 290 MB with
# the default model (README, Container). It does not build the tools, the tests or the
# sanitizer build.
#
#   docker build -t t5serve .                                  (BuildKit keeps no stage image)
#   podman build --format docker --layers=false -t t5serve .   (no build stage left behind; with
#       podman's default --layers the build stage stays as a <none> image, the cache of the next
#       build: `podman image prune` removes it)
#   docker run --rm --init -p 8080:8080 --stop-timeout 35 t5serve        (serves on :8080)
#
# Stopping: STOPSIGNAL SIGTERM; t5serve then answers /ready with 503, finishes the requests in
# flight for up to drain_timeout_ms (30 s by default) and exits 0. The engine's SIGKILL comes 10 s
# after SIGTERM by default (docker, podman), which cuts a long request still draining: give the
# drain its time plus a margin: `docker stop -t 35` / `podman stop -t 35` (or `--stop-timeout 35`
# at `docker run` / `podman run`), compose `stop_grace_period` (deploy/compose.yaml: 30 s for its
# 25 s drain), Kubernetes `terminationGracePeriodSeconds` (deploy/k8s/deployment.yaml: 35 s =
# preStop 5 + drain 25 + 5).
#
# Configuration: /etc/t5serve/t5serve.conf (the repository's config/t5serve.conf), overridden by
# environment variables (T5SERVE_ + the key in upper case, e.g. -e T5SERVE_PORT=9000
# -e T5SERVE_WORKERS=2) or by arguments after the image name (--port 9000).
# Another model is a volume over the default model's folder:
#   podman run --init -p 8080:8080 -v /srv/my-t5:/opt/t5serve/models/default:ro t5serve
# Build argument MODEL: the model folder inside the build context (default models/default).

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev make pkg-config binutils \
        libopenblas-dev libjansson-dev libmicrohttpd-dev libuv1-dev zlib1g-dev >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
# the Makefile includes it (fuzzing rules; nothing is built from it here)
COPY tests/fuzz/fuzz.mk tests/fuzz/fuzz.mk
COPY tokenizer/ tokenizer/
COPY engine/ engine/
COPY config/ config/
COPY gen/ gen/
COPY server/ server/
RUN make -j"$(nproc)" build/t5serve && strip build/t5serve

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
        libopenblas0-pthread libjansson4 libmicrohttpd12 libuv1 zlib1g >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --system --uid 10001 --home-dir /opt/t5serve --shell /usr/sbin/nologin t5serve
ARG MODEL=models/default
COPY --from=build /src/build/t5serve /usr/local/bin/t5serve
# One layer each, readable by the service user whatever the modes in the build context were
# (a RUN chmod afterwards would store the model a second time).
COPY --chmod=0644 config/t5serve.conf /etc/t5serve/t5serve.conf
COPY --chmod=0755 ${MODEL}/ /opt/t5serve/models/default/
WORKDIR /opt/t5serve
ENV T5SERVE_CONFIG=/etc/t5serve/t5serve.conf \
    T5SERVE_HOST=0.0.0.0 \
    T5SERVE_PORT=8080 \
    T5SERVE_MODEL=/opt/t5serve/models/default
USER 10001:10001
EXPOSE 8080
VOLUME ["/opt/t5serve/models"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/t5serve", "--probe"]
ENTRYPOINT ["/usr/local/bin/t5serve"]
