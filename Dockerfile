# logml's image for docker-compose.yml:  docker build -t logml .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# numpy, numba, confluent-kafka and orjson come as manylinux wheels: no compiler needed
COPY . /app
RUN pip install . \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin logml \
 && chown -R logml /app
USER logml

# Prometheus metrics of `logml run`
EXPOSE 8000
CMD ["logml", "run", "-c", "pipelines/kafka.toml"]
