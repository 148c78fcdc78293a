"""Prometheus metrics: requests and latency by route, import jobs by status.

Each application object has its own registry (tests build many). Request
metrics count what this process served: run one server process per container
and scrape each, or sum over processes in Prometheus. Import job counts are
read from the database at scrape time, so every process reports the whole queue.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.imports.models import ImportJob, JobStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Searches take milliseconds; imports and slow pages up to seconds.
_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ptdir_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ptdir_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._jobs: _ImportJobs | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def watch_imports(self, engine: Engine) -> None:
        if self._jobs is not None:  # the application started again (tests)
            self.registry.unregister(self._jobs)
        self._jobs = _ImportJobs(engine)
        self.registry.register(self._jobs)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ImportJobs(Collector):
    """`ptdir_import_jobs{status}`: jobs in the queue's table, by status."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ptdir_import_jobs", "Import jobs by status", labels=["status"])
        try:
            with self.engine.connect() as connection:
                counts = connection.execute(
                    select(ImportJob.status, func.count()).group_by(ImportJob.status)
                ).all()
        except SQLAlchemyError:
            yield family  # the database is down: /readyz says so; metrics still answer
            return
        found = {JobStatus(status): count for status, count in counts}
        for status in JobStatus:  # every status, zeros included, for steady dashboards
            family.add_metric([status.value], found.get(status, 0))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("ptdir_import_jobs", "Import jobs by status", labels=["status"])
