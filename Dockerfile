# Threadgate: a slim, non-root image, installed from the lock file; health is checked on the
# admin endpoint. The gateway is PID 1 (exec-form ENTRYPOINT): it handles SIGTERM itself and
# drains (docs/operations.md), so `docker stop` is a graceful stop.
FROM python:3.11-slim AS build
WORKDIR /src
# The pinned, hash-checked dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY actors ./actors
COPY gateway ./gateway
COPY providers ./providers
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --user-group threadgate \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /install /usr/local
USER 10001:10001
ENV THREADGATE_DATA_DIR=/data \
    THREADGATE_ADMIN_ADDR=127.0.0.1:8787 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; t = os.environ.get('THREADGATE_ADMIN_TOKEN', ''); r = u.Request('http://127.0.0.1:8787/healthz', headers={'Authorization': 'Bearer ' + t} if t else {}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["threadgate"]
CMD ["run"]
