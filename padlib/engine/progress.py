"""Progress for long loops: a tqdm bar on an interactive terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("padlib")


class Progress:
    """Counts images through a loop and shows images/s and ETA."""

    def __init__(self, total_steps: int, desc: str, enabled: bool = True, log_every: int = 50) -> None:
        self.total, self.desc, self.log_every = total_steps, desc, max(1, log_every)
        self.enabled = enabled
        self.steps = 0
        self.images = 0
        self.start = time.perf_counter()
        interactive = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, desc=desc, unit="batch", dynamic_ncols=True, leave=False) if interactive else None

    @property
    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)

    def update(self, images: int, **stats: float) -> None:
        """Record one finished step of ``images`` images; ``stats`` are shown beside the rate."""
        self.steps += 1
        self.images += images
        if not self.enabled:
            return
        shown = {k: f"{v:.4g}" for k, v in stats.items()}
        if self.bar is not None:
            self.bar.set_postfix(**shown, img_s=f"{self.images_per_s:.0f}", refresh=False)
            self.bar.update(1)
        elif self.steps % self.log_every == 0 or self.steps == self.total:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.steps * (self.total - self.steps)
            extra = " ".join(f"{k} {v}" for k, v in shown.items())
            log.info(f"{self.desc} [{self.steps}/{self.total}] {extra} {self.images_per_s:.0f} img/s eta {eta:.0f}s")

    def close(self) -> None:
        """Remove the bar (the caller logs the summary line)."""
        if self.bar is not None:
            self.bar.close()
