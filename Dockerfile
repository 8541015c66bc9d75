# syntax=docker/dockerfile:1
#
# One image for every service; the command picks which one runs (`dm-gateway`, `dm-importer`,
# `dm migrate`, ...). See docs/operators.md.

# ---- build: a virtualenv holding the pinned dependencies and the project -------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, so this layer is rebuilt only when the lock changes. The lock carries
# hashes: every download is checked against them.
COPY requirements.lock ./
RUN pip install --no-deps --require-hashes -r requirements.lock

# The project itself. One COPY per directory: `COPY a/ b/ ./` would merge their contents.
COPY pyproject.toml README.md ./
COPY contracts/ contracts/
COPY services/ services/
RUN pip install --no-deps .

# ---- runtime: the virtualenv only, run as an unprivileged user ------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DM_GATEWAY_HOST=0.0.0.0 \
    DM_GATEWAY_PORT=8000 \
    DM_DATA_DIR=/srv/data \
    DM_IMPORTS_ROOT=/srv/imports

# Fixed ids, so volumes and `runAsNonRoot` policies see the same owner everywhere. The
# directories are created here, owned by dm, so named volumes mounted on them start writable.
RUN groupadd --system --gid 10001 dm \
    && useradd --system --uid 10001 --gid dm --create-home --home-dir /home/dm \
        --shell /usr/sbin/nologin dm \
    && mkdir -p /srv/data /srv/imports \
    && chown dm:dm /srv/data /srv/imports

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /srv

EXPOSE 8000
CMD ["dm-gateway"]
