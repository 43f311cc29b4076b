"""Apache Airflow provider for reliable integrations with external systems."""

from __future__ import annotations

__version__ = "0.1.0"
