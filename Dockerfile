# Threadgate: a slim, non-root image; health is checked on the admin endpoint.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY actors ./actors
COPY gateway ./gateway
COPY providers ./providers
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 threadgate \
    && mkdir -p /data && chown threadgate /data
COPY --from=build /install /usr/local
USER threadgate
ENV THREADGATE_DATA_DIR=/data \
    THREADGATE_ADMIN_ADDR=127.0.0.1:8787 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["threadgate"]
CMD ["run"]
