# One image for the API and the workers: `prunelab serve` or `prunelab worker`.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY backend backend
COPY prunespec prunespec
COPY worker worker
COPY frontend frontend
COPY migrations migrations
# editable: migrations/ and frontend/ are read from the source tree. gcc only while installing: it
# builds the statistics pass's C kernel (worker/engine/fold_rows.c), then goes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -e . \
    && python -c "from worker.engine import fold_kernel; assert fold_kernel.available()" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home prunelab && mkdir -p /data && chown prunelab /data
USER prunelab
ENV PRUNELAB_DATA_DIR=/data
EXPOSE 8000
CMD ["prunelab", "serve", "--host", "0.0.0.0"]
