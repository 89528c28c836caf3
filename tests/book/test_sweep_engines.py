"""The README's sweep recipes, executed: its GNU parallel line and its SLURM array script.

A small musat-stress sweep (16 runs; the README's commands with the chapter parameters that make
it small, two shards and, for the parallel line, a results folder in a temporary directory instead
of the repository's) runs through Debian's GNU ``parallel`` and through a one-node SLURM cluster that
the test starts (``munged``, ``slurmctld``, ``slurmd`` on 127.0.0.1, private ports, state in a
temporary folder) and stops. The README's SLURM script is submitted unchanged but for its size
(array and shard count, the parameters); each merged file must equal an unsharded run's.
Without the Debian packages these tests skip, naming the install command (``.ci/run`` installs them).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ihcore.book import sweeps
from ihcore.book.chapters import get_chapter
from ihcore.book.sweep_registry import SWEEPS

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "apt-get install -y parallel slurmctld slurmd slurm-client munge"
SWEEP = "musat-stress"
SIZE = {"stress_n_max": 4, "n_seeds": 1, "tau_factor": 1, "n_pairs": 2, "n_max_full": 2, "dim": 6, "batch_size": 8}
FLAGS = " ".join(f"-p {name} {value}" for name, value in SIZE.items())


def readme() -> str:
    return (ROOT / "README.md").read_text()


def parallel_line() -> str:
    return next(line for line in readme().splitlines() if line.startswith(f"parallel -j 4 python -m ihcore sweep {SWEEP}"))


def slurm_script() -> str:
    return re.search(r"```bash\n(#!/bin/bash\n#SBATCH .*?)```", readme(), flags=re.DOTALL)[1]


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    """The sweep run whole, in this process, and merged: the file every recipe must reproduce."""
    folder = tmp_path_factory.mktemp("unsharded")
    sweep = SWEEPS[SWEEP]
    p = sweep.parameters(get_chapter(sweep.chapter).parameters.parse({k: str(v) for k, v in SIZE.items()}))
    sweeps.run_sweep(sweep, p, folder, (0, 1))
    return sweep, p, sweeps.merge(sweep, p, folder).read_text()


def environment(tmp_path: Path) -> dict:
    """This Python's environment first on PATH (the README's ``python``), progress bars off."""
    env = dict(os.environ, IHCORE_PROGRESS="0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


@pytest.mark.skipif(shutil.which("parallel") is None, reason=f"GNU parallel is not installed: `{INSTALL}`")
def test_the_readme_parallel_line_merges_like_the_unsharded_run(tmp_path, unsharded):
    sweep, p, expected = unsharded
    # Two shards on two jobs, not four: this machine has two cores.
    line = parallel_line().replace("-j 4", "-j 2").replace("::: 0 1 2 3", "::: 0 1").replace(
        f"sweep {SWEEP}", f"sweep {SWEEP} {FLAGS}").replace("{}/4", f"{{}}/2 --results {tmp_path}")
    result = subprocess.run(line, shell=True, cwd=tmp_path, env=environment(tmp_path), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(re.findall(r"shard (\d)/2: \d+ results", result.stdout)) == ["0", "1"]
    assert sweeps.merge(sweep, p, tmp_path).read_text() == expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SLURM_CONF = """\
ClusterName=ihcoretest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")


@pytest.fixture
def slurm(tmp_path):
    """A one-node SLURM cluster on 127.0.0.1, started here and stopped after the test; yields its environment."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM or munge is not installed ({', '.join(missing)} missing): `{INSTALL}`")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root (CI runs as root)")
    d = tmp_path / "cluster"
    for folder in (d / "state", d / "spool"):
        folder.mkdir(parents=True)
    (d / "munge.key").write_bytes(os.urandom(1024))
    (d / "munge.key").chmod(0o600)
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=socket.gethostname().split(".")[0], ctld_port=free_port(),
                                      d_port=free_port(), d=d))
    env = dict(environment(tmp_path), SLURM_CONF=str(conf))
    daemons = []
    munge = ["munged", "--foreground", "--force", f"--key-file={d}/munge.key", f"--socket={d}/munge.socket",
             f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"]
    try:
        for command in (munge, ["slurmctld", "-D", "-f", str(conf)], ["slurmd", "-D", "-f", str(conf)]):
            daemons.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30,
                                   check=False).stdout.strip()
            if state == "idle":
                break
            if time.monotonic() > deadline:
                logs = "".join(p.read_text()[-2000:] for p in d.glob("*.log"))
                pytest.fail(f"the SLURM node did not come up (state {state!r}):\n{logs}")
            time.sleep(1)
        yield env
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=30, check=False)
        for daemon in reversed(daemons):  # slurmd, slurmctld (both told by scontrol), then munged
            if daemon.args[0] == "munged":
                daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=15)


def test_the_readme_slurm_array_merges_like_the_unsharded_run(tmp_path, slurm, unsharded):
    sweep, p, expected = unsharded
    script = slurm_script().replace("--array=0-7", "--array=0-1").replace('/8"', '/2"').replace(
        f"sweep {SWEEP} --shard", f"sweep {SWEEP} {FLAGS} --shard")
    assert script.count("\n") == slurm_script().count("\n") and '--shard "$SLURM_ARRAY_TASK_ID/2"' in script
    submit = tmp_path / "submit"  # the submit directory: the script's `.venv/bin/python` and `results` live here
    submit.mkdir()
    (submit / ".venv").symlink_to(Path(sys.prefix))
    (submit / f"{SWEEP}.sbatch").write_text(script)
    result = subprocess.run(["sbatch", "--wait", f"{SWEEP}.sbatch"], cwd=submit, env=slurm, capture_output=True,
                            text=True, timeout=600, check=False)
    outputs = {path.name: path.read_text() for path in submit.glob("slurm-*.out")}
    assert result.returncode == 0, (result.stdout, result.stderr, outputs)
    assert len(outputs) == 2 and all(f"{SWEEP} shard" in text for text in outputs.values()), outputs
    assert sweeps.merge(sweep, p, submit / "results").read_text() == expected
