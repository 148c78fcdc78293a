# syntax=docker/dockerfile:1

# ---- builder: virtualenv with dependencies and the project (editable) ----
FROM python:3.12-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}"

WORKDIR /srv/ptdir

# Runtime dependencies first, so this layer is cached until pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN python -m venv /opt/venv \
    && python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project'].get('dependencies', []); open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# Editable install: the source tree lives at /srv/ptdir in the final image too.
COPY app/ ./app/
RUN pip install --no-cache-dir --no-deps -e .

# ---- runtime ----
FROM python:3.12-slim-bookworm

ARG APP_UID=10001
ARG APP_GID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}" \
    XDG_DATA_HOME=/var/lib/ptdir

RUN groupadd --system --gid "${APP_GID}" ptdir \
    && useradd --system --no-log-init --uid "${APP_UID}" --gid ptdir \
        --home-dir /var/lib/ptdir --shell /usr/sbin/nologin ptdir \
    && mkdir -p /var/lib/ptdir/ptdir \
    && chown -R ptdir:ptdir /var/lib/ptdir

WORKDIR /srv/ptdir

COPY --from=builder /opt/venv /opt/venv
COPY pyproject.toml README.md alembic.ini ./
COPY migrations/ ./migrations/
COPY data/ ./data/
COPY app/ ./app/

USER ${APP_UID}:${APP_GID}

VOLUME ["/var/lib/ptdir"]

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["ptdir", "serve", "--host", "0.0.0.0", "--port", "8000"]
