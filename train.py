"""Train one (model, padding, data, seed) run: ``python train.py [overrides]`` (see README.md).

Every option is a Hydra override of configs/; the run directory is ``hydra.run.dir``. Starting the same
command again resumes the run from its last checkpoint. Under torchrun or SLURM every rank runs this
script; only rank 0 writes.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from padlib.engine.distributed import env_rank
from padlib.errors import PadlibError
from padlib.run_naming import register_resolvers

log = logging.getLogger("padlib")


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    """Resolve the config to plain data and hand it to the trainer."""
    from padlib.engine.trainer import train  # heavy (torch); not needed for --cfg/--help

    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        train(plain)
    except PadlibError as e:
        log.error(str(e))
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except MissingMandatoryValue as e:  # e.g. data=imagenet without data.root
        print(f"error: {e.full_key} must be set (e.g. {e.full_key}=/path)", file=sys.stderr)
        sys.exit(2)


# configs/config.yaml names run directories with padlib's resolvers
register_resolvers()

if __name__ == "__main__":
    if env_rank() != 0:
        # only rank 0 writes Hydra's files (.hydra/, train.log) into the shared run directory
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    main()
