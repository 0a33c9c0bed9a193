FROM python:3.11-slim
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/base.lock
COPY . .
ENV PYTHONUNBUFFERED=1
