# cpm in a container: Debian 12 slim, built in one stage, run in another
# that holds only the binary, its libraries, the config and the shell and
# Perl CGI examples.
#
#   docker build -t cpm .
#   docker run --rm -p 8080:8080 --name cpm cpm     # http://127.0.0.1:8080/
#   time docker stop cpm                            # graceful: well under 10 s
#
# Manual check (no Docker daemon where the tests run; t/deploy.bats checks
# this file with t/dockerfile_check.py and the runtime libraries with ldd):
# the build succeeds, `docker ps` shows "(healthy)" after ~10 s,
# `curl -s 127.0.0.1:8080/healthz` says ok, and `docker stop` returns in
# about drain_delay (2 s) with "master exiting" as the last log line, not
# after docker's 10 s and a SIGKILL (exit code 137 in `docker ps -a`).
#
# The container's config is etc/cpm-container.json (/etc/cpm/cpm.json): all
# addresses on 8080, both logs on stderr ("-"), /healthz.
# docker stop sends STOPSIGNAL (QUIT: graceful) and waits 10 s by default:
# drain_delay 2s + graceful_timeout 7s fit in it; give --stop-timeout more
# if you raise them. Kubernetes sends TERM whatever STOPSIGNAL says:
# "sigterm": "graceful" makes that graceful too.

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev make libcrypt-dev libjansson-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make -j2 cpm examples/hello

FROM debian:bookworm-slim AS runtime
# what ldd ./cpm needs (t/deploy.bats maps each library to its package and
# checks it is here), and /etc/mime.types for static files
RUN apt-get update \
    && apt-get install -y --no-install-recommends libc6 libcrypt1 libjansson4 libssl3 media-types \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin cpm \
    && install -d -o 10001 -g 10001 -m 0750 /run/cpm
COPY --from=build /src/cpm /usr/sbin/cpm
COPY --from=build /src/examples/hello /src/examples/index.sh /src/examples/hello.sh /src/examples/form.sh \
     /src/examples/stream.sh /src/examples/env.pl /usr/share/cpm/examples/
COPY etc/cpm-container.json /etc/cpm/cpm.json
# numeric, so Kubernetes' runAsNonRoot can verify it; not root, so the
# config has no "user": the master cannot switch users and does not
USER 10001:10001
EXPOSE 8080
# graceful stop: workers finish in-flight requests (SIGTERM would be fast
# without "sigterm": "graceful")
STOPSIGNAL SIGQUIT
# no curl in the slim image: bash's /dev/tcp, and the status line must be
# 200 (the health backend answers 503 while draining)
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r proto code rest <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/sbin/cpm"]
CMD ["-c", "/etc/cpm/cpm.json"]
