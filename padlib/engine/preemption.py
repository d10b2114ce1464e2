"""Preemption: a signal becomes a flag the loop polls between steps; the loop saves a mid-epoch checkpoint,
and only once it is on disk does the job leave, handed to whoever requeues it.

What SLURM sends (docs/CLUSTER.md): SIGTERM to every task when a job is preempted, requeued
(``scontrol requeue``), cancelled or at its time limit, then SIGKILL after ``KillWait`` (30 s by
default); ``--signal=USR2@N`` (submitit's time-limit warning; many sbatch scripts use USR1) N seconds
before the time limit, after which the job must requeue itself.

The hand-off (:meth:`PreemptionHandler.hand_off`), after every rank stopped at the same step:
1. rank 0 writes ``last.pt`` (atomic, fsynced); every rank waits for it at a barrier, because a rank
   that leaves with an error status ends the whole step under ``KillOnBadExit=1``;
2. rank 0 hands the job on: submitit's own handler (it requeues on its signal), or for a time-limit
   warning in a plain SLURM job ``scontrol requeue``; SIGTERM needs nothing (SLURM acts itself);
3. every rank waits for that at a second barrier, then exits with 128 + the signal (a time-limit
   warning wins over a SIGTERM that came with it: the job must requeue itself); rank 0 under submitit
   with submitit's own status, which its local executor reads as "requeue".

``PADLIB_FAULT`` and ``PADLIB_SAVE_DELAY_S`` exist for tests: a signal at an exact step, and a slow
checkpoint file system.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from padlib.engine.distributed import DistInfo, barrier
from padlib.errors import PadlibError

log = logging.getLogger("padlib")

# SLURM/submitit warn with SIGUSR2 by default (SUBMITIT_PREEMPT_SIGNAL), many sbatch scripts with SIGUSR1;
# SIGTERM comes on preemption, requeue, cancellation and at the time limit.
SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)
WARNING_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # "the time limit is near": the job must requeue itself


def slurm_job() -> dict[str, Any]:
    """The SLURM job this process runs in (id and how many times it was requeued), or {}."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    return {"slurm_job_id": os.environ["SLURM_JOB_ID"],
            "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}


class PreemptionHandler:
    """Catches the preemption signals and remembers the first one."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> PreemptionHandler:
        """Take over the signals, keeping whatever handler was there to chain to later."""
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        """Give the signals back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def installed(self) -> bool:
        """Whether the handler holds the signals now."""
        return bool(self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            log.warning(f"received {signal.Signals(signum).name}: saving a checkpoint after this step")
        self.received = strongest(self.received, signum)

    def requested(self) -> bool:
        """True once a preemption signal arrived."""
        return self.received is not None

    def hand_off(self, dist: DistInfo, signum: int, record: Callable[[str], None]) -> NoReturn:
        """Leave the job after the checkpoint is durable (the caller saved it on rank 0), for ``signum`` (the
        signal every rank agreed on): rank 0 hands the job to whoever requeues it and ``record``s how; no rank
        exits before both are done, and every rank exits with 128 + ``signum``."""
        # SLURM's SIGTERM (then SIGKILL) may follow a requeue: finish the hand-off first (train() restores it)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        barrier(dist)  # rank 0's last.pt is on disk
        ending: BaseException | None = None
        if dist.is_main:
            how, ending = _requeue(signum, self._previous.get(signum))
            try:
                record(how)
            except Exception:  # the record is lost, not the hand-off: every rank still meets at the barrier
                log.exception("could not record the interruption in run.json")
            log.warning(f"{how}; exiting")
        barrier(dist)  # rank 0 has handed the job on
        if ending is not None:
            raise ending
        sys.exit(128 + signum)


def strongest(a: int | None, b: int | None) -> int | None:
    """The signal a job acts on when it got both: a time-limit warning (the job must requeue itself) over
    SIGTERM (SLURM acts by itself), else the first."""
    if a is None or b is None:
        return a if b is None else b
    return b if a not in WARNING_SIGNALS and b in WARNING_SIGNALS else a


def _requeue(signum: int, previous: Any) -> tuple[str, BaseException | None]:
    """(what happened, an exception rank 0 ends with): the launcher's handler where there is one, ``scontrol
    requeue`` for a time-limit warning in a plain SLURM job, else nothing."""
    job = os.environ.get("SLURM_JOB_ID")
    if callable(previous):  # submitit's: requeues (then exits) on its signal, lets SIGTERM pass
        try:
            previous(signum, None)
        except SystemExit as e:  # rank 0 leaves with submitit's status: its local executor requeues on it
            return "handed to submitit, which requeued the job", e
        except Exception as e:  # e.g. submitit's "timed out too many times": the job ends here
            return f"submitit did not requeue the job ({e})", e
        if job and signum not in WARNING_SIGNALS:
            return "left to SLURM (SIGTERM: the job is preempted, requeued, cancelled or out of time)", None
        return "handed to the launcher's handler", None
    if job and signum in WARNING_SIGNALS:
        try:
            subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", "") or e
            return f"scontrol requeue {job} failed ({str(detail).strip()}); resubmit the job to resume", None
        return f"requeued SLURM job {job} (scontrol requeue)", None
    if job:
        return "left to SLURM (SIGTERM: the job is preempted, requeued, cancelled or out of time)", None
    return "not requeued (no SLURM job or submitit here)", None


FAULT_ENV = "PADLIB_FAULT"
SAVE_DELAY_ENV = "PADLIB_SAVE_DELAY_S"


@dataclass(frozen=True)
class Fault:
    """``PADLIB_FAULT=SIGNAL@EPOCH:STEP[/RANK]``: the process (of rank RANK; every rank when not given)
    sends itself SIGNAL as it begins step STEP of EPOCH (both counted from 1), as a signal landing during
    that step would: a preempted run saves after it (``batch`` STEP). A run resumed from that checkpoint
    starts after the step, so a requeued job with the same environment goes on."""

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
        if not m or not hasattr(signal, m[1]) or int(m[3]) < 1:
            raise PadlibError(f"{FAULT_ENV}={text!r}: expected SIGNAL@EPOCH:STEP[/RANK], e.g. SIGUSR1@2:3")
        return cls(int(getattr(signal, m[1])), int(m[2]), int(m[3]), None if m[4] is None else int(m[4]))

    def fire_at(self, epoch: int, done: int, rank: int) -> None:
        """Before a step (``done`` steps of ``epoch`` finished): send the signal if the next one is the fault's."""
        if (epoch, done + 1) == (self.epoch, self.step) and self.rank in (None, rank):
            log.warning(f"{FAULT_ENV}: sending {signal.Signals(self.signum).name} in step {self.step} of epoch {epoch}")
            # raised in this (the main) thread: its handler runs before the loop asks, every time
            signal.raise_signal(self.signum)


def slow_storage_for_tests() -> None:
    """Sleep ``PADLIB_SAVE_DELAY_S`` seconds before a mid-epoch checkpoint: a slow shared file system."""
    delay = float(os.environ.get(SAVE_DELAY_ENV, "0") or 0)
    if delay > 0:
        log.warning(f"{SAVE_DELAY_ENV}: the checkpoint write takes {delay:g} s more")
        time.sleep(delay)
