"""The time budget's side of `CNNVisCallback`: which due record runs (`_gate`), what each
record is charged (`_account`) and the report of what was used and skipped."""

from __future__ import annotations

import time
import warnings

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.callbacks.budget import final_reserve
from keras_cnnvis.callbacks.monitors import REGISTRY


class BudgetGate:
    """Mixin of `CNNVisCallback` (which holds `budget`, `names`, `monitors`, `skipped`,
    `_skips`, `_runner`, `_ended` and `_writer`): the budget's decisions and charges."""

    def _gate(self, monitor: MonitorCallback, phase: str) -> bool:
        """Whether `monitor`'s due record fits in the budget (`TimeBudget.admits`)."""
        name = self.names[self.monitors.index(monitor)]
        others = (m.log_seconds for m in self.monitors)
        budget = self.budget
        if phase == "epoch" and budget.epochs_expected is not None:
            if budget.epochs_trained >= budget.epochs_expected:
                phase = "final"  # the last epoch's records: nothing left to pay back with
        reserve = 0.0
        if phase == "epoch" and budget.projected_allowance is not None:
            entries = [(m, REGISTRY[n].cheap) for m, n in zip(self.monitors, self.names)]
            reserve = final_reserve(entries, monitor, (self.params or {}).get("epochs"))
        cheap = REGISTRY[name].cheap
        if budget.admits(phase, cheap, monitor.log_seconds, others, reserve):
            return True
        step = monitor._last_completed
        if phase != "initial" and (step is None or (name, step) not in self._skips):
            self.skipped[name] = self.skipped.get(name, 0) + 1
            self._skips.add((name, step))  # (asked again at the end: one record skipped)
        return False

    def _account(self, charge: bool, monitor, seconds: float) -> None:
        """Charges a hook's seconds to the budget, or (`charge=False`: the records of the
        state before training) counts them as setup. A record on the twin (called in the
        worker as it ends) ran beside training until training ended: those seconds are
        charged as concurrent, the rest in full."""
        if not charge:
            self.budget.one_time(seconds)
            return
        beside = 0.0
        if monitor is not None and self._runner is not None:
            end, ended = time.perf_counter(), self._ended
            beside = seconds if ended is None else max(0.0, min(end, ended) - (end - seconds))
        self.budget.charge(seconds - beside)
        if beside > 0:
            self.budget.charge(beside, concurrent=True)

    def _report_budget(self, step: int | None) -> None:
        """Logs the share of training time used; at the end, warns about skipped records."""
        used = self.budget.used
        writer = self._writer
        logged = self.budget.share is not None and np.isfinite(used)
        if writer is not None and step is not None and logged:
            try:
                if writer.worker is not None:  # in order with the queued records
                    writer.worker.submit(
                        self, step, lambda: writer.scalar("cnnvis/overhead", used, step)
                    )
                else:
                    writer.scalar("cnnvis/overhead", used, step)
            except Exception:  # reporting must not stop training
                pass
        if step is None and self.skipped:
            counts = ", ".join(f"{name} {n}" for name, n in self.skipped.items())
            warnings.warn(
                f"CNNVisCallback skipped {sum(self.skipped.values())} records ({counts}) "
                f"to keep its own time within budget={self.budget.share:g} of training "
                f"time (used {used:.2f}). Pass budget=None to run every monitor on its "
                "schedule, or a larger budget.",
                UserWarning,
                stacklevel=2,
            )
