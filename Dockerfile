# One image for every paystream role; the command picks the role.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY payments payments
COPY telemetry telemetry
COPY psp psp
COPY store store
COPY gateway gateway
COPY actors actors
COPY paystream paystream
COPY stack stack
COPY drill drill
COPY bench bench
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
# The simulator keeps its book here (a volume in docker-compose.yml).
RUN mkdir /data && chown nobody /data
USER nobody
ENTRYPOINT ["paystream"]
CMD ["gateway", "--host", "0.0.0.0", "--port", "8000"]
