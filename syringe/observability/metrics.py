"""Prometheus metrics. Counters and histograms are recorded where things happen; gauges that mirror
state (live lessons by status, Kubernetes calls by verb) are read at scrape time from their owners."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

LAUNCH_SECONDS = Histogram(
    "syringe_launch_duration_seconds",
    "Seconds from launch to READY, by lesson.",
    ["lesson"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
ERRORS = PromCounter(
    "syringe_livelesson_errors_total",
    "Live lessons that went to ERROR, by reason (ImagePullBackOff, CrashLoopBackOff, Unschedulable, probe, ...).",
    ["reason"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "syringe_http_request_duration_seconds",
    "API request latency, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)


class StateCollector(Collector):
    """Live lessons by status and Kubernetes API calls by verb, read from their owners at scrape time."""

    def __init__(self, statuses: Callable[[], Counter[str]], api_calls: Callable[[], Counter[str]]) -> None:
        self.statuses = statuses
        self.api_calls = api_calls

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lessons = GaugeMetricFamily("syringe_live_lessons", "Live lessons, by status.", labels=["status"])
        for status, count in sorted(self.statuses().items()):
            lessons.add_metric([status], count)
        yield lessons
        calls = CounterMetricFamily(
            "syringe_kubernetes_api_calls", "Calls to the Kubernetes API server, by verb.", labels=["verb"]
        )
        for verb, count in sorted(self.api_calls().items()):
            calls.add_metric([verb], count)
        yield calls
