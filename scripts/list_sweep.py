"""List the jobs a multirun would submit, without submitting anything (a dry run).

    python scripts/list_sweep.py experiment=paper_sweep [more overrides, sweeps like padding=zero,partial]

Uses Hydra's own compose API and BasicSweeper expansion, so the list is what ``train.py -m`` runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The override list of every job of the sweep, in launch order."""
    cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params) or {}
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    swept = [f"{k}={v}" for k, v in params.items() if k not in given]
    parsed = OverridesParser.create().parse_overrides(overrides + swept)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def main(argv: list[str]) -> None:
    """Print one line per job: its number, overrides and run directory."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        jobs = sweep_jobs(argv)
        for i, job in enumerate(jobs):
            cfg = compose(config_name="config", overrides=job, return_hydra_config=True)
            run_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            shown = " ".join(o for o in job if o not in argv)
            print(f"#{i:<3d} {shown}  ->  {run_dir}")
        launcher = cfg.hydra.launcher.get("_target_", "basic").rsplit(".", 1)[-1] if jobs else "-"
        print(f"{len(jobs)} jobs, launcher {launcher}")


if __name__ == "__main__":
    main(sys.argv[1:])
