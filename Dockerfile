# An exact tag: a rebuild gets the Python the locks were tested with, not whatever is newest.
FROM python:3.11.13-slim-bookworm
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/base.lock
# The apps run as a user of their own, never root. The folders the key, certificate and token
# volumes are mounted at belong to it, so a new volume does too and the one-shot services can
# write there; the CA's is for Prometheus, and the Redis users' for Redis (other users), to read
# as well.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin vigil \
    && install -d -o vigil -g vigil -m 0700 /run/vigil/signing /run/vigil/verify /run/vigil/auth \
        /run/vigil/analyser-tls /run/vigil/ai-api-token \
    && install -d -o vigil -g vigil -m 0755 /run/vigil/ca /run/vigil/redis
# The code belongs to root: the apps can read it, not change it.
COPY . .
ENV PYTHONUNBUFFERED=1
USER vigil
