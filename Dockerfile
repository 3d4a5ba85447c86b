# Steward worker image, used by docker-compose.yml for both the default and the privileged
# worker (which one is chosen by `--role`; credentials come only from compose's env files).
#
# Dependencies install from the hash-pinned lock exactly as `make install` does; the project
# itself installs without dependencies. llama-cpp-python builds from source (3 to 5 minutes
# once), hence the compiler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    OMP_WAIT_POLICY=passive

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Only what the package and its default config need: never the build context's secrets/.
# Every package the entry points import (tests/test_dockerfile.py imports them from a copy
# laid out by these lines): the CLI and the workers import evals/ too.
COPY pyproject.toml README.md ./
COPY steward ./steward
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY evals ./evals
COPY examples ./examples
RUN pip install --no-deps --no-build-isolation .

# Workers run unprivileged; the outbox directory exists so a mounted volume inherits its owner.
RUN useradd --create-home --uid 10001 steward \
    && mkdir -p /app/.steward/outbox \
    && chown -R steward /app/.steward
USER steward

ENTRYPOINT ["steward"]
CMD ["worker", "--role", "default"]
