"""Preemption: SIGUSR1/SIGUSR2/SIGTERM become a flag the loop polls between steps, so it can save a mid-epoch
checkpoint before the job goes away; then the launcher's own handler (submitit's requeue) takes over."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import NoReturn

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
