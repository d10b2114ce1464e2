"""Where a process sits in a job: torchrun's variables, an srun step's, or none; and its GPU."""

import pytest

from padlib.engine import distributed
from padlib.engine.distributed import first_host, gpu_index, master_port
from padlib.errors import PadlibError

SLURM_STEP = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_LOCALID": "1",
              "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_JOB_NODELIST": "gpu[07-08]",
              "SLURM_STEP_NODELIST": "gpu[07-08]"}
TORCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR")


@pytest.fixture
def clean_env(monkeypatch):
    for var in (*TORCH_VARS, *SLURM_STEP):
        # setenv first so monkeypatch restores the variable's absence too: _export_slurm_env writes
        # RANK/WORLD_SIZE straight into os.environ, and a leaked RANK=1 turns every later evaluate.py
        # call into a silent rank-1 no-op (and a later DDP test into a hang)
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    return monkeypatch


@pytest.mark.parametrize("nodelist, host", [("vm", "vm"), ("gpu[07-12,20],cpu1", "gpu07"), ("n1,n2", "n1"),
                                            ("r[1-2]-n[3-4]", "r1-n3"), ("node[009]", "node009")])
def test_first_host(nodelist, host):
    assert first_host(nodelist) == host


def test_an_srun_step_of_two_tasks_is_a_world_of_two(clean_env):
    for k, v in SLURM_STEP.items():
        clean_env.setenv(k, v)
    distributed._export_slurm_env()
    import os

    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("1", "2", "1")
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("gpu07", str(master_port("4242", "0")))
    assert master_port("4242", "0") != master_port("4242", "1")


def test_the_batch_script_itself_and_torchrun_are_left_alone(clean_env):
    import os

    batch = {k: v for k, v in SLURM_STEP.items() if not k.startswith("SLURM_STEP")}
    for k, v in batch.items():
        clean_env.setenv(k, v)
    distributed._export_slurm_env()  # SLURM_NTASKS=2 but no srun step: one process
    assert "RANK" not in os.environ
    for k, v in SLURM_STEP.items():
        clean_env.setenv(k, v)
    clean_env.setenv("RANK", "5")  # torchrun inside the step: its variables win
    distributed._export_slurm_env()
    assert os.environ["RANK"] == "5" and "WORLD_SIZE" not in os.environ


@pytest.mark.parametrize("local_rank, visible, gpu", [(0, 8, 0), (5, 8, 5), (3, 1, 0), (0, 1, 0)])
def test_gpu_index(local_rank, visible, gpu):
    assert gpu_index(local_rank, visible) == gpu


def test_too_few_gpus_for_the_tasks_of_a_node_is_one_error():
    with pytest.raises(PadlibError, match="local rank 5 but only 4 GPUs visible"):
        gpu_index(5, 4)


def test_a_time_limit_warning_wins_over_a_sigterm_that_came_with_it():
    import signal

    from padlib.engine.preemption import strongest

    term, usr1, usr2 = signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2
    assert strongest(None, term) == term and strongest(term, None) == term
    assert strongest(term, usr2) == usr2 and strongest(usr2, term) == usr2  # the job must requeue itself
    assert strongest(usr1, usr2) == usr1  # otherwise the first
