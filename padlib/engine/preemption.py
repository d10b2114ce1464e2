"""Preemption: SIGUSR1/SIGUSR2/SIGTERM become a flag the loop polls between steps, so it can save a mid-epoch
checkpoint before the job goes away; then the launcher's own handler (submitit's requeue) takes over.

``PADLIB_FAULT`` (tests only) makes a run send itself a signal at an exact step, so an interruption test
interrupts where it means to, on any machine at any speed."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from padlib.errors import PadlibError

log = logging.getLogger("padlib")

# SLURM/submitit warn with SIGUSR2 by default (SUBMITIT_PREEMPT_SIGNAL), many clusters with SIGUSR1,
# and SIGTERM comes at the end of a time limit or a preemption.
SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)


class PreemptionHandler:
    """Catches the preemption signals and remembers the first one."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> PreemptionHandler:
        """Take over the signals, keeping whatever handler was there to chain to later."""
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        """Give the signals back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            log.warning(f"received {signal.Signals(signum).name}: saving a checkpoint after this step")
        self.received = signum

    def requested(self) -> bool:
        """True once a preemption signal arrived."""
        return self.received is not None

    def exit(self) -> NoReturn:
        """Hand over to the previous handler (submitit requeues the job and exits), else exit 128+signum."""
        signum = self.received or signal.SIGTERM
        previous = self._previous.get(signum)
        self.uninstall()
        if callable(previous):
            previous(signum, None)
        sys.exit(128 + signum)


FAULT_ENV = "PADLIB_FAULT"


@dataclass(frozen=True)
class Fault:
    """``PADLIB_FAULT=SIGNAL@EPOCH:STEP[/RANK]``: the process (of rank RANK; every rank when not given)
    sends itself SIGNAL when STEP steps of EPOCH are done, in a run's first start only (a resumed or
    requeued run goes on)."""

    signum: int
    epoch: int
    step: int
    rank: int | None = None

    @classmethod
    def from_env(cls) -> Fault | None:
        """The fault ``PADLIB_FAULT`` asks for, or None."""
        text = os.environ.get(FAULT_ENV, "").strip()
        if not text:
            return None
        m = re.fullmatch(r"(SIG[A-Z0-9]+)@(\d+):(\d+)(?:/(\d+))?", text)
        if not m or not hasattr(signal, m[1]):
            raise PadlibError(f"{FAULT_ENV}={text!r}: expected SIGNAL@EPOCH:STEP[/RANK], e.g. SIGUSR1@2:3")
        return cls(int(getattr(signal, m[1])), int(m[2]), int(m[3]), None if m[4] is None else int(m[4]))

    def fire_at(self, epoch: int, step: int, rank: int) -> None:
        """Send the signal when (``epoch``, ``step``, ``rank``) is the fault's place."""
        if (epoch, step) == (self.epoch, self.step) and self.rank in (None, rank):
            log.warning(f"{FAULT_ENV}: sending {signal.Signals(self.signum).name} at epoch {epoch}, step {step}")
            os.kill(os.getpid(), self.signum)
