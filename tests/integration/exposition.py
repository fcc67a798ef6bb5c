"""Scraping ``/metrics`` in tests, with the checks ``promtool check metrics`` makes.

``scrape`` parses the exposition (a parse error fails the test) and lints it: every family
has HELP and TYPE, names are snake_case, counters end in ``_total``, no series appears
twice, and each histogram's buckets are cumulative and end in ``+Inf`` equal to its count.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from harness.sandbox import Sandbox

__all__ = ["Exposition", "scrape"]

_METRIC_NAME = re.compile(r"^[a-z_:][a-z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_COUNTER_SUFFIXES = ("_total", "_created")


@dataclass
class Exposition:
    text: str
    samples: list[Sample]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.matching(name, **labels))

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and labels.items() <= s.labels.items()]

    def show(self, name: str, **labels: str) -> None:
        """Print the matching lines of the exposition, for the test's output."""
        for sample in self.matching(name, **labels):
            rendered = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            print(f"metrics: {name}{{{rendered}}} {sample.value}")


def scrape(box: Sandbox) -> Exposition:
    response = httpx.get(f"http://127.0.0.1:{box.stack.settings.port}/metrics")
    assert response.status_code == 200
    problems, samples = lint(response.text)
    assert not problems, problems
    return Exposition(response.text, samples)


def lint(text: str) -> tuple[list[str], list[Sample]]:
    """Problems found in an exposition (empty if it is clean), and its samples."""
    problems: list[str] = []
    samples: list[Sample] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    problems += [f"family {n} appears twice" for n in set(names) if names.count(n) > 1]
    for family in families:
        if not family.documentation:
            problems.append(f"{family.name}: no HELP")
        if family.type == "unknown":
            problems.append(f"{family.name}: no TYPE")
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in seen:
                problems.append(f"{sample.name}{sample.labels}: duplicate series")
            seen.add(key)
            problems += _name_problems(family.type, sample)
        if family.type == "histogram":
            problems += _histogram_problems(family.name, family.samples)
        samples += family.samples
    return problems, samples


def _name_problems(kind: str, sample: Sample) -> list[str]:
    problems = []
    if not _METRIC_NAME.match(sample.name):
        problems.append(f"{sample.name}: not a snake_case metric name")
    problems += [f"{sample.name}: bad label name {k!r}" for k in sample.labels if not _LABEL_NAME.match(k)]
    if kind == "counter" and not sample.name.endswith(_COUNTER_SUFFIXES):
        problems.append(f"{sample.name}: a counter's name should end in _total")
    if kind == "counter" and (sample.value < 0 or math.isnan(sample.value)):
        problems.append(f"{sample.name}{sample.labels}: a counter below zero")
    return problems


def _histogram_problems(name: str, samples: list[Sample]) -> list[str]:
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = defaultdict(list)
    counts: dict[tuple[tuple[str, str], ...], float] = {}
    for s in samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        if s.name == f"{name}_bucket":
            buckets[labels].append((float(s.labels["le"]), s.value))
        elif s.name == f"{name}_count":
            counts[labels] = s.value
    problems = []
    for labels, series in buckets.items():
        series.sort()
        values = [v for _, v in series]
        if values != sorted(values):
            problems.append(f"{name}{dict(labels)}: buckets are not cumulative")
        if series[-1][0] != math.inf or series[-1][1] != counts.get(labels):
            problems.append(f"{name}{dict(labels)}: the +Inf bucket is missing or differs from _count")
    return problems
