# Clonewatch images. The default (last) stage, `worker`, holds the worker and the operational
# commands (setup, dashboards import, produce, tail, replay, redeliver): the engine and the
# sinks' clients, not the simulator. `--target demo` adds the simulator and `evaluate` ([sim]),
# for docker-compose's demo producer.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY clonewatch ./clonewatch
COPY schemas ./schemas
COPY detectors ./detectors
COPY streams ./streams
COPY scripts/compile.py ./scripts/compile.py
# detectors/ compiled with mypyc in place (mypy reads the installed dependencies' types), then
# installed with its extensions (package data); CLONEWATCH_COMPILE=0 keeps the pure Python.
ARG CLONEWATCH_COMPILE=1
ARG WORKER_EXTRAS=elasticsearch,opensearch,rocksdb
RUN pip install --no-cache-dir ".[${WORKER_EXTRAS}]" "mypy==2.4.1" \
    && CLONEWATCH_COMPILE=$CLONEWATCH_COMPILE python scripts/compile.py \
    && pip install --no-cache-dir --prefix=/install ".[${WORKER_EXTRAS}]" \
    && pip install --no-cache-dir --prefix=/install-sim ".[sim]"

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLONEWATCH_LOG_FORMAT=json \
    CLONEWATCH_DASHBOARDS_DIR=/opt/clonewatch/dashboards
COPY --from=build /install /usr/local
COPY dashboards /opt/clonewatch/dashboards
RUN useradd --system --uid 10001 --home-dir /var/lib/clonewatch clonewatch \
    && mkdir -p /var/lib/clonewatch /demo \
    && chown clonewatch:clonewatch /var/lib/clonewatch /demo
WORKDIR /var/lib/clonewatch
EXPOSE 9308
ENTRYPOINT []

FROM base AS demo
COPY --from=build /install-sim /usr/local
USER clonewatch
CMD ["clonewatch", "demo", "--out", "/demo"]

FROM base AS worker
USER clonewatch
CMD ["clonewatch", "worker"]
