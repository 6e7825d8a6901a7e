# Syringe service image, which is also the configurator image configuration Jobs run (`syringe configure`).
# Build from the repository root:
#   docker build -t syringe --build-arg CURRICULUM=lessons .
# or, daemonless and cached: scripts/images.sh build (see docs/OPERATIONS.md, "Building the images").
# The curriculum is baked in from the build context (CURRICULUM) or mounted at /curriculum at run time.
# Behind a TLS-intercepting proxy, give pip its CA bundle as a build secret:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt ...
#
# FROM debian:bookworm-slim, with Debian's python3 (3.11) and a venv, rather than python:3.11-slim: a Debian
# base can be made without a registry (mmdebstrap, then imported under this name), so the image builds
# the same here, offline from any registry, and anywhere else with docker build unchanged.

FROM docker.io/library/debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv=3.11.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syringe ./syringe
COPY api ./api
# The secret `ca` is optional: pip trusts it when it is given and not empty.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/syringe \
 && /opt/syringe/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM docker.io/library/debian:bookworm-slim
ARG CURRICULUM=lessons
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3=3.11.* ca-certificates=2023* \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin syringe
COPY --from=build /opt/syringe /opt/syringe
COPY ${CURRICULUM} /curriculum
USER 10001
ENV PATH=/opt/syringe/bin:$PATH \
    SYRINGE_CURRICULUM=/curriculum \
    SYRINGE_HOST=0.0.0.0 \
    SYRINGE_PORT=8086
EXPOSE 8086
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8086/healthz', timeout=2)"]
ENTRYPOINT ["syringe", "serve"]
