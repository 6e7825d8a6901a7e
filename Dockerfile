# Syringe service image. Build: docker build -t syringe --build-arg CURRICULUM=lessons .
# The curriculum is baked in from the build context (CURRICULUM) or mounted at /curriculum at run time.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syringe ./syringe
COPY api ./api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ARG CURRICULUM=lessons
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin syringe
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY ${CURRICULUM} /curriculum
USER 10001
ENV SYRINGE_CURRICULUM=/curriculum \
    SYRINGE_HOST=0.0.0.0 \
    SYRINGE_PORT=8086
EXPOSE 8086
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8086/healthz', timeout=2)"]
ENTRYPOINT ["syringe", "serve"]
