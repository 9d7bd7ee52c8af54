# One image for the app and both kinds of worker. PyPI's Linux torch wheels carry CUDA, so
# the same image runs on GPU workers; pass --build-arg TORCH_INDEX_URL=<a CPU-only wheel
# index> for a smaller CPU-only image.
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 EDDYSCOPE_DATA_DIR=/data

WORKDIR /srv/eddyscope
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL"; \
    else pip install "$TORCH_SPEC"; fi
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY physics ./physics
COPY models ./models
COPY workers ./workers
COPY static ./static
RUN pip install -e . && mkdir -p /data /artifacts \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin \
       eddyscope \
    && chown eddyscope:eddyscope /data /artifacts

# Never root: the code is root-owned and read-only to the app; it writes only /data and
# /artifacts (a fresh named volume takes these owners).
USER eddyscope:eddyscope

EXPOSE 8050
# Bound to every interface inside the container, so auth is on (EDDYSCOPE_AUTH=auto).
CMD ["eddyscope", "api", "--host", "0.0.0.0", "--port", "8050"]
