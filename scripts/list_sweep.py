"""List the jobs a multirun would submit and the run directory of each, without running anything.

    python scripts/list_sweep.py experiment=paper_sweep [more overrides, sweeps like trainer.optim.lr=0.1,0.02]

Takes what ``python train.py -m`` takes (``-m`` itself may be given or not). Uses Hydra's compose API and
BasicSweeper expansion, the sweeper's ``params`` from the config first and the command line after, as
Hydra does, so the list is what ``train.py -m`` runs and where each run will be written. A directory that
holds a run already says whether the run is completed (it will be skipped) or will resume.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from padlib.errors import PadlibError
from padlib.run_naming import register_resolvers
from padlib.rundir import RunDir

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MULTIRUN_FLAGS = ("-m", "--multirun")


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The override list of every job of the sweep, in launch order."""
    parser = OverridesParser.create()
    # the sweeper's params depend on the config (experiment=...): compose the first point to read them
    first = BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)[0][0]
    cfg = compose(config_name="config", overrides=first, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params) if params else {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    parsed = parser.parse_overrides(from_config + overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def run_dir_of(job: list[str]) -> Path:
    """Where train.py -m writes the run of ``job``."""
    cfg = compose(config_name="config", overrides=job, return_hydra_config=True)
    return Path(os.path.normpath(Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)))


def state_of(path: Path) -> str:
    """'' for a new run, else what train.py will do with the run already there."""
    rundir = RunDir(path)
    if not rundir.exists():
        return ""
    try:
        status = rundir.read_info()["status"]
    except PadlibError:
        return "  (holds an unreadable run.json)"
    return "  (completed: skipped)" if status == "completed" else f"  ({status}: resumes)"


def main(argv: list[str]) -> int:
    """Print one line per job: its number, the overrides that vary, and its run directory."""
    argv = [a for a in argv if a not in MULTIRUN_FLAGS]
    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            jobs = sweep_jobs(argv)
            varying = {o for job in jobs for o in job} - set.intersection(*(set(j) for j in jobs))
            dirs = [run_dir_of(job) for job in jobs]
            for i, (job, path) in enumerate(zip(jobs, dirs, strict=True)):
                shown = " ".join(o for o in job if o in varying) or "(no swept settings)"
                print(f"#{i:<3d} {shown}  ->  {path}{state_of(path)}")
            cfg = compose(config_name="config", overrides=jobs[0], return_hydra_config=True)
            launcher = cfg.hydra.launcher.get("_target_", "basic").rsplit(".", 1)[-1]
    except (HydraException, OmegaConfBaseException, PadlibError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    shared = len(dirs) - len(set(dirs))
    print(f"{len(jobs)} jobs, launcher {launcher}")
    if shared:
        print(f"error: {shared} job(s) share a run directory with another: set hydra.sweep.subdir so that it "
              "names every swept setting", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
