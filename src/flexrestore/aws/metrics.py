"""CloudWatch metrics in Embedded Metric Format (powertools ``single_metric``): one EMF document per count,
written at once, so a metric is never lost to a handler that raises afterwards. Every metric carries the
``service`` dimension (POWERTOOLS_SERVICE_NAME) the template's alarms select on."""

from __future__ import annotations

import os


class CloudWatchMetrics:
    def __init__(self, namespace: str | None = None, service: str | None = None) -> None:
        self.namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FlexRestore")
        self.service = service or os.environ.get("POWERTOOLS_SERVICE_NAME", "flexrestore")

    def count(self, name: str, dimension: str | None = None, value: str | None = None) -> None:
        self._emit(name, 1.0, "Count", dimension, value)

    def duration(self, name: str, seconds: float) -> None:
        self._emit(name, float(seconds), "Seconds", None, None)

    def value(
        self,
        name: str,
        amount: float,
        *,
        unit: str = "Count",
        dimension: str | None = None,
        dimension_value: str | None = None,
    ) -> None:
        self._emit(name, float(amount), unit, dimension, dimension_value)

    def _emit(self, name: str, amount: float, unit: str, dimension: str | None, value: str | None) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(
            name=name,
            unit=MetricUnit(unit),
            value=amount,
            namespace=self.namespace,
            default_dimensions={"service": self.service},
        ) as metric:
            if dimension is not None and value is not None:
                metric.add_dimension(name=dimension, value=value)
