# Clonewatch: the worker and every CLI command (setup, dashboards import, simulate, produce).
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
RUN pip install --no-cache-dir ".[rocksdb]" "mypy==2.4.1" \
    && CLONEWATCH_COMPILE=$CLONEWATCH_COMPILE python scripts/compile.py \
    && pip install --no-cache-dir --prefix=/install ".[rocksdb]"

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLONEWATCH_LOG_FORMAT=json \
    CLONEWATCH_DASHBOARDS_DIR=/opt/clonewatch/dashboards
COPY --from=build /install /usr/local
COPY dashboards /opt/clonewatch/dashboards
RUN useradd --system --uid 10001 --home-dir /var/lib/clonewatch clonewatch \
    && mkdir -p /var/lib/clonewatch /demo \
    && chown clonewatch:clonewatch /var/lib/clonewatch /demo
USER clonewatch
WORKDIR /var/lib/clonewatch
EXPOSE 9308
ENTRYPOINT []
CMD ["clonewatch", "worker"]
