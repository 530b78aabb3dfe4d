# One image for the API and the workers: `prunelab serve` or `prunelab worker`.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend backend
COPY worker worker
COPY frontend frontend
COPY migrations migrations
# editable: migrations/ and frontend/ are read from the source tree
RUN pip install -e .
RUN useradd --create-home prunelab && mkdir -p /data && chown prunelab /data
USER prunelab
ENV PRUNELAB_DATA_DIR=/data
EXPOSE 8000
CMD ["prunelab", "serve", "--host", "0.0.0.0"]
