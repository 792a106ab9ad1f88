# The Lockstep processes (orchestrator, serving, indexer) for docker-compose.yml.
FROM python:3.11.9-slim-bookworm

ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PATH="/app/.venv/bin:${PATH}"

# The uv release the lockfile was written with.
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# Dependencies first, in their own layer: they change far less often than the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev \
    && useradd --system --no-create-home --shell /usr/sbin/nologin lockstep

USER lockstep
CMD ["lockstep", "--help"]
