"""padlib on a real SLURM cluster: the one-node cluster scripts/slurm_local.sh starts on this machine (make
test starts it). 2-task jobs on CPU with gloo, KillOnBadExit=1, signals as SLURM sends them.

Without SLURM here the tests skip with the reason slurm_local.sh gave; with PADLIB_REQUIRE_SLURM=1 (CI)
they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from padlib.rundir import RunDir, find_runs
from tests.train_helpers import REPO, env, metrics_without_timing, run, start, sweep_cmd, train_cmd, wait_for

pytestmark = pytest.mark.slow

STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/var/lib/padlib-slurm"))
# Quick: the srun and launcher tests. Long: a run still training 45 s after its job started. slurmctld
# checks time limits every 30 s, so a job with --time=1 --signal=USR2@45 is warned at the first check
# after it starts: any time in its first 30 s. The run sleeps in its convolutions (tests/slow_mode.py)
# rather than computing, so that it lasts as long on any machine.
QUICK = ("trainer.epochs=3", "trainer.progress=false")
LONG = ("padding=custom", "padding._target_=tests.slow_mode.SlowZero", "+padding.seconds=0.008", "trainer.epochs=8",
        "trainer.progress=false")
LAUNCHER = ("hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2", "hydra.launcher.gpus_per_node=null",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10")


def _slurm_missing() -> str | None:
    """Why this machine has no usable SLURM, or None."""
    if not shutil.which("sbatch"):
        reason = (STATE / "unavailable").read_text().strip() if (STATE / "unavailable").is_file() else ""
        return reason or "no sbatch here: run bash scripts/slurm_local.sh start (make test does)"
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()
    if not {"idle", "mixed", "allocated"} & set(state):
        return f"no SLURM node up (sinfo: {' '.join(state) or 'nothing'}): bash scripts/slurm_local.sh start"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm():
    missing = _slurm_missing()
    if missing and os.environ.get("PADLIB_REQUIRE_SLURM") == "1":
        pytest.fail(f"PADLIB_REQUIRE_SLURM=1 but {missing}")
    if missing:
        pytest.skip(missing)


def squeue(job: str) -> tuple[str, str]:
    """(state, reason) of a job; ('', '') once it left the queue."""
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True).stdout.split()
    return (out[0], out[1]) if len(out) >= 2 else ("", "")


def node_idle() -> bool:
    """Whether the one node has finished cleaning up after every job (no step left, credentials released)."""
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()
    return out == ["idle"]


def release_requeued(job: str, *updates: str) -> bool:
    """Let ``job`` start now if it was requeued (SLURM holds a requeued job back for about two minutes), once
    the node has cleaned up its last run: started sooner, SLURM kills it ("Job credential revoked")."""
    if squeue(job) != ("PENDING", "BeginTime") or not node_idle():
        return False
    subprocess.run(["scontrol", "update", f"jobid={job}", *updates, "StartTime=now"], check=True, capture_output=True)
    return True


@pytest.fixture
def jobs():
    """Job ids a test submits: cancelled at its end whatever happened, so none waits for the next test."""
    ids: list[str | subprocess.Popen] = []
    yield ids
    for item in ids:
        if isinstance(item, subprocess.Popen):
            item.kill()  # a launcher still waiting
        else:
            subprocess.run(["scancel", item], capture_output=True)


def restarts(job: str) -> int:
    """How many times SLURM requeued ``job``."""
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    field = [w for w in out.split() if w.startswith("Restarts=")]
    return int(field[0].split("=")[1]) if field else 0


def interruptions(run_dir: Path) -> list[tuple[str, str]]:
    return [(i["signal"], i["then"]) for i in RunDir(run_dir).read_info().get("interruptions", [])]


def srun_cmd(run_dir: Path, data_root: Path, *overrides: str) -> list[str]:
    return ["srun", "--ntasks=2", "--cpus-per-task=1", *train_cmd(run_dir, data_root, *overrides)]


def torchrun_cmd(run_dir: Path, data_root: Path, *overrides: str) -> list[str]:
    cmd = train_cmd(run_dir, data_root, *overrides)
    return [cmd[0], "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *cmd[1:]]


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory, data_root):
    """The LONG run as one srun -n 2 step, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("long") / "run"
    res = run(srun_cmd(run_dir, data_root, *LONG), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return run_dir


def test_srun_two_tasks_is_one_ddp_run_equal_to_torchrun(tmp_path, data_root):
    """``srun -n 2 python train.py``: one 2-rank run (rank, world size, local rank and master address from
    SLURM), the same as torchrun's; before, two world-size-1 copies trained into one directory."""
    reference, run_dir = tmp_path / "torchrun", tmp_path / "srun"
    res = run(torchrun_cmd(reference, data_root, *QUICK), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    res = run(srun_cmd(run_dir, data_root, *QUICK), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    info = RunDir(run_dir).read_info()
    assert (info["world_size"], info["status"]) == (2, "completed") and "slurm_job_id" in info
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3]
    assert (run_dir / "metrics.jsonl").read_text().count('"epoch": 1,') == 1
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)


def test_launcher_sweep_on_slurm_equals_the_same_sweep_run_locally(tmp_path, data_root):
    """The README's cluster command (hydra/launcher=slurm: submitit and sbatch) runs a sweep of 2-task jobs
    to the end, and its tables equal those of the same sweep on submitit's local executor."""
    tables = {}
    for name, launcher in (("slurm", LAUNCHER), ("local", ("hydra/launcher=submitit_local",
                                                           "hydra.launcher.tasks_per_node=2"))):
        sweep = tmp_path / name
        res = run([*sweep_cmd(sweep, data_root, "padding=zero,partial", "trainer.epochs=1", "trainer.progress=false"),
                   *launcher], timeout=900)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
        runs = find_runs(sweep)
        assert len(runs) == 2 and all(r.read_info()["world_size"] == 2 for r in runs)
        res = run([sys.executable, "evaluate.py", "tables", str(sweep), "--out", str(tmp_path / f"{name}_tables")])
        assert res.returncode == 0, res.stderr
        tables[name] = [(tmp_path / f"{name}_tables" / f).read_text() for f in ("best.csv", "last5.csv")]
    assert tables["slurm"] == tables["local"]
    assert any("slurm_job_id" in r.read_info() for r in find_runs(tmp_path / "slurm"))


def test_scontrol_requeue_of_a_launcher_job_resumes_exactly(tmp_path, data_root, long_reference, jobs):
    """``scontrol requeue`` (what preemption does too): SIGTERM to every task, KillOnBadExit=1 and a slow
    checkpoint file system. Every rank waits for rank 0's checkpoint, SLURM requeues the job, it resumes
    mid-epoch and ends with the uninterrupted run's metrics; run.json says what happened."""
    sweep = tmp_path / "sweep"
    cmd = [*sweep_cmd(sweep, data_root, *LONG), *LAUNCHER]
    proc = start(cmd, tmp_path / "log", {"PADLIB_SAVE_DELAY_S": "3"})
    jobs.append(proc)

    def job_log() -> Path | None:
        logs = sorted(sweep.glob(".submitit/*/*_0_log.out"))
        return logs[0] if logs else None

    wait_for(lambda: job_log() is not None and "epoch 2/8 train loss" in job_log().read_text(), timeout=300,
             what="the job to finish epoch 2")
    job = job_log().parent.name
    jobs.append(job)
    subprocess.run(["scontrol", "requeue", job], check=True)
    wait_for(lambda: release_requeued(job) or proc.poll() is not None, timeout=180, what="the requeue")
    assert proc.wait(timeout=600) == 0, (tmp_path / "log").read_text()[-3000:]
    [rd] = find_runs(sweep)
    info = rd.read_info()
    assert (info["status"], info["resumes"], info["slurm_restart_count"]) == ("completed", 1, 1)
    assert interruptions(rd.path) == [
        ("SIGTERM", "left to SLURM (SIGTERM: the job is preempted, requeued, cancelled or out of time)")]
    text = job_log().read_text()
    assert "PADLIB_SAVE_DELAY_S" in text and "saved a mid-epoch checkpoint" in text and "resuming" in text
    assert metrics_without_timing(rd.path) == metrics_without_timing(long_reference)


def test_time_limit_signal_checkpoints_requeues_and_resumes_exactly(tmp_path, data_root, long_reference, jobs):
    """A hand-written sbatch script (srun -n 2) with --time and --signal=USR2@N: SLURM warns every task,
    they stop at the same step, rank 0 saves (slowly) while the others wait, then requeues the job with
    scontrol; the next start resumes and ends like the uninterrupted run."""
    run_dir, log = tmp_path / "run", tmp_path / "job.log"
    cmd = " ".join(train_cmd(run_dir, data_root, *LONG))
    script = tmp_path / "job.sh"
    script.write_text(f"""#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=1
#SBATCH --signal=USR2@45
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={log}
cd {REPO}
srun {cmd}
""")
    job = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, cwd=REPO,
                         env=env({"PADLIB_SAVE_DELAY_S": "3"}), check=True).stdout.strip().split(";")[0]
    jobs.append(job)
    # the warning comes within SLURM's first time-limit check; then the requeued job gets time to finish
    def requeued() -> bool:
        state = squeue(job)
        assert state[0] or restarts(job), f"the job ended without a requeue: {log.read_text()[-3000:]}"
        return state == ("PENDING", "BeginTime")

    wait_for(requeued, timeout=180, what="the time-limit requeue")
    assert restarts(job) == 1
    # time enough to finish, and no waiting for SLURM's requeue delay
    wait_for(lambda: release_requeued(job, "TimeLimit=10"), timeout=120, what="the node to clean up")
    wait_for(lambda: squeue(job)[0] == "", timeout=300, what="the requeued job to end")
    text = log.read_text()
    info = RunDir(run_dir).read_info()
    assert (info["status"], info["world_size"], info["resumes"]) == ("completed", 2, 1), text[-3000:]
    assert interruptions(run_dir) == [("SIGUSR2", f"requeued SLURM job {job} (scontrol requeue)")]
    assert "saved a mid-epoch checkpoint" in text and "resuming" in text
    assert metrics_without_timing(run_dir) == metrics_without_timing(long_reference)


def test_a_batch_script_step_of_one_task_is_not_a_world(tmp_path, data_root):
    """Inside the batch script (no srun) SLURM_NTASKS says 2, but the process is alone: no process group."""
    run_dir, log = tmp_path / "run", tmp_path / "job.log"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --output={log}\ncd {REPO}\n"
                      + " ".join(train_cmd(run_dir, data_root, "trainer.epochs=1", "trainer.progress=false")) + "\n")
    subprocess.run(["sbatch", "--wait", str(script)], capture_output=True, text=True, cwd=REPO, env=env(),
                   timeout=300, check=True)
    info = RunDir(run_dir).read_info()
    assert (info["world_size"], info["status"]) == (1, "completed"), log.read_text()[-2000:]
