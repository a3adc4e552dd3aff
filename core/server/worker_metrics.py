"""One ``/metrics`` for all workers: the parent scrapes each worker at every scrape and serves the sum.

Each worker keeps its own registry (its calls, its models' statistics, read at scrape
time), served on a private loopback port. Counters, histograms and Triton's per-model
figures add up over the workers, as they would in one process that had served every
call. A few series describe what every worker shares, so they are not added: a model is
ready when it is ready in every worker (the least), a GPU's memory is the same device
seen from each (the most), and a ``_created`` time is the earliest.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .metrics import Endpoint

log = logging.getLogger("museforge.metrics")

SCRAPE_TIMEOUT_SECONDS = 5.0
SHARED: dict[str, Callable[[Iterable[float]], float]] = {
    "museforge_model_ready": min,
    "nv_gpu_memory_used_bytes": max,
    "nv_gpu_memory_total_bytes": max,
}


def _combine(family: str, sample: str) -> Callable[[Iterable[float]], float]:
    if sample.endswith("_created"):
        return min
    return SHARED.get(family, sum)


def merge(texts: Sequence[str]) -> list[Metric]:
    """The families of several exposition texts, each series combined over the texts."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], tuple[dict[str, str], list[float]]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            series = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                series.setdefault(key, (sample.labels, []))[1].append(sample.value)
    for name, metric in families.items():
        for (sample_name, _), (labels, found) in values[name].items():
            metric.add_sample(sample_name, labels, _combine(name, sample_name)(found))
    return list(families.values())


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as reply:
        return str(reply.read().decode("utf-8"))


class WorkersCollector(Collector):
    """At each scrape: every worker's metrics, merged (a worker that does not answer is left out)."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = list(addresses)

    def collect(self) -> Iterator[Metric]:
        texts = []
        for address in self.addresses:
            try:
                texts.append(scrape(address))
            except OSError as exc:
                log.warning("metrics of the worker at %s not read: %s", address, exc)
        yield from merge(texts)


class MergedMetrics(Endpoint):
    """The parent's HTTP endpoint serving the workers' merged metrics."""

    def __init__(self, addresses: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.workers = WorkersCollector(addresses)
        self.registry.register(self.workers)

    def scrape_workers(self, addresses: Sequence[str]) -> None:
        """Merge these workers' metrics from now on (the endpoint listens before they are ready)."""
        self.workers.addresses = list(addresses)
