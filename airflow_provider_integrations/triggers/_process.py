"""Once-per-process tuning of the process that runs our triggers (normally a triggerer)."""

from __future__ import annotations

import gc

from airflow.sdk import conf

_tuned = False


def tune_process_once() -> None:
    """Apply ``[integrations] triggerer_gc_freeze`` when the first of our triggers starts in this process.

    A full garbage collection walks every tracked object, and while it runs the triggerer's event loop
    stands still for all its triggers. After start-up most of that heap is Airflow itself (about 200,000
    objects) and never becomes garbage; ``gc.freeze()`` moves it out of the collector's reach, as Airflow
    does in its DAG processor manager and local executor after their start-up. Measured with 10,000
    waiting triggers (``bench/trigger_density.py --gc-freeze``), it takes the worst loop stall from about
    300 ms to below 200 ms. Off by default: it is a process-wide setting, so the deployment decides.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    if conf.getboolean("integrations", "triggerer_gc_freeze", fallback=False):
        gc.freeze()
