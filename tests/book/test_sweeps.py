"""Sweeps: one result file per run, resumable after a kill, shardable, merged in configuration order."""

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ihcore.book import sweep_registry, sweeps
from ihcore.book.cli import main
from ihcore.book.sweeps import Sweep
from ihcore.spine.claims import write_json_atomic
from ihcore.spine.train import COMPILE_ENV

ROOT = Path(__file__).resolve().parents[2]

# A test-only sweep in a subprocess: registered by this script, then run by the real CLI.
# Each run logs its index before sleeping, so the log says which runs were (re)computed.
SLEEPY = """
import sys, time
import numpy as np
from ihcore.book import sweep_registry, sweeps
from ihcore.book.cli import main
log, n_runs, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def build(p):
    return [{"i": i, "seed": p.seed} for i in range(n_runs)]

def run(config, progress=False):
    with open(log, "a") as file:
        file.write(f"{config['i']}\\n")
    time.sleep(pause)
    return {"i": config["i"], "x": np.linspace(0.0, 1.0, 5) / 3 * (config["i"] + 1), "n": np.int64(config["i"])}

sweep_registry.register(sweeps.Sweep("test-sleepy", "from-scratch", "test only", build, run, key_fields=("i",)))
sys.exit(main(sys.argv[4:]))
"""


def sleepy_twin() -> Sweep:
    """The subprocess's sweep as seen from here (same configurations and keys; not runnable)."""
    return Sweep("test-sleepy", "from-scratch", "test only", lambda p: [{"i": i, "seed": p.seed} for i in range(8)],
                 run=None, key_fields=("i",))


def start_sleepy(results: Path, log: Path, pause: float, *args: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "IHCORE_PROGRESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", SLEEPY, str(log), "8", str(pause), "sweep", "test-sleepy", "--results", str(results), *args],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """name -> (inode, mtime in ns) of every result file."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in directory.glob("*.json")}


def test_a_killed_sweep_resumes_without_recomputing_and_merges_like_an_uninterrupted_one(tmp_path):
    results, log = tmp_path / "results", tmp_path / "calls.log"
    folder = results / "test-sleepy"
    process = start_sleepy(results, log, 0.4)
    deadline = time.monotonic() + 60  # a hang guard
    while len(list(folder.glob("*.json"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.kill()
    process.wait()
    before = snapshot(folder)
    assert 3 <= len(before) < 8, process.stderr.read()
    twin = sleepy_twin()
    configs = twin.configs(twin.parameters())
    finished = {config["i"] for config in configs if twin.key(config) + ".json" in before}
    # what a run killed while writing would leave: a temp file next to a missing result
    unfinished = next(config for config in configs if config["i"] not in finished)
    stale = folder / f".{twin.key(unfinished)}.json.x1y2z3.tmp"
    stale.write_text('{"config": {"i"')

    rerun = start_sleepy(results, log, 0.0)
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
    after = snapshot(folder)
    assert len(after) == 8
    assert {name: after[name] for name in before} == before  # finished files untouched
    calls = [int(line) for line in log.read_text().split()]
    assert all(calls.count(i) == 1 for i in finished)
    assert set(calls) == set(range(8))
    assert not list(folder.glob(".*"))  # no temp files left
    for path in folder.glob("*.json"):
        document = json.loads(path.read_text())
        assert set(document) == {"config", "result", "wall_s", "cpu", "compiled"} and document["compiled"] is False

    uninterrupted = tmp_path / "uninterrupted"
    assert start_sleepy(uninterrupted, tmp_path / "other.log", 0.0).wait(timeout=60) == 0
    p = twin.parameters()
    merged = sweeps.merge(twin, p, results)
    assert merged == results / "test-sleepy.json"
    assert merged.read_text() == sweeps.merge(twin, p, uninterrupted).read_text()
    runs = sweeps.load_merged(merged)["runs"]
    assert [run["config"]["i"] for run in runs] == list(range(8))
    assert runs[5]["result"]["x"].dtype == np.float64 and runs[5]["result"]["n"] == 5


def counting_sweep(calls: list, n_runs: int = 7, name: str = "test-counting") -> Sweep:
    def build(p):
        return [{"i": i, "seed": p.seed, "scale": 0.5} for i in range(n_runs)]

    def run(config, progress=False):
        calls.append(config["i"])
        return {"i": config["i"], "x": np.arange(4.0) * config["scale"] + config["i"], "nan": float("nan")}

    return Sweep(name, "from-scratch", "test only", build, run, key_fields=("i",))


def test_shards_partition_the_sweep_and_merge_like_the_unsharded_run(tmp_path):
    calls = []
    sweep = counting_sweep(calls)
    p = sweep.parameters()
    per_shard = []
    for i in range(3):
        before = len(calls)
        sweeps.run_sweep(sweep, p, tmp_path / "sharded", shard=(i, 3), progress=False)
        per_shard.append(set(calls[before:]))
    assert per_shard == [{0, 3, 6}, {1, 4}, {2, 5}]
    assert sorted(calls) == list(range(7))
    sweeps.run_sweep(sweep, p, tmp_path / "sharded", shard=(1, 3), progress=False)
    assert len(calls) == 7  # nothing recomputed
    sweeps.run_sweep(sweep, p, tmp_path / "whole", progress=False)
    sharded, whole = sweeps.merge(sweep, p, tmp_path / "sharded"), sweeps.merge(sweep, p, tmp_path / "whole")
    assert sharded.read_text() == whole.read_text()


def test_merge_names_the_missing_runs_and_the_shards_that_make_them(tmp_path):
    sweep = counting_sweep([])
    p = sweep.parameters({"seed": 3})
    sweeps.run_sweep(sweep, p, tmp_path, shard=(0, 3), progress=False)
    sweeps.run_sweep(sweep, p, tmp_path, shard=(2, 3), progress=False)
    with pytest.raises(sweeps.MissingResults) as error:
        sweeps.merge(sweep, p, tmp_path, shards=3)
    message = str(error.value)
    assert "2 of 7 results missing" in message
    assert f"test-counting -p seed 3 --results {tmp_path} --shard 1/3" in message
    assert "--shard 0/3" not in message and "--shard 2/3" not in message
    with pytest.raises(sweeps.MissingResults, match="k = 1, 4"):
        sweeps.merge(sweep, p, tmp_path)
    assert not (tmp_path / "test-counting.json").exists()


def test_results_round_trip_exactly(tmp_path):
    result = {
        "f64": np.array([[0.1, -0.0, np.nan], [np.inf, -np.inf, 1e-310]]),
        "f32": np.array([1 / 3, np.nan, np.inf], dtype=np.float32),
        "i64": np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
        "i32": np.array([2**31 - 1], dtype=np.int32),
        "u8": np.array([0, 255], dtype=np.uint8),
        "bools": np.array([True, False]),
        "scalar_array": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "names": np.array(["alpha3", "beta2"]),
        "nan": float("nan"), "inf": float("inf"), "none": None, "text": "x", "flag": True, "int": 7,
        "np_float32": np.float32(0.1), "np_int": np.int64(4),
        "nested": {"tuple": (1, 2.0, np.arange(2))},
    }
    path = tmp_path / "r.json"
    write_json_atomic(path, sweeps.encode(result))
    back = sweeps.decode(json.loads(path.read_text()))
    for name, value in result.items():
        if isinstance(value, np.ndarray):
            assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
            assert np.array_equal(back[name], value, equal_nan=value.dtype.kind == "f"), name
    assert np.signbit(back["f64"][0, 1])
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["none"] is None
    assert (back["text"], back["flag"], back["int"]) == ("x", True, 7)
    assert back["np_float32"] == float(np.float32(0.1)) and back["np_int"] == 4
    assert back["nested"]["tuple"][:2] == [1, 2.0]  # tuples come back as lists
    assert np.array_equal(back["nested"]["tuple"][2], np.arange(2))


@pytest.mark.parametrize("value", [{1: "int key"}, {"x": object()}, {"c": np.array([1j])}])
def test_values_that_would_not_round_trip_are_refused(value):
    with pytest.raises(TypeError):
        sweeps.encode(value)


def test_the_key_is_stable_readable_and_independent_of_dict_order():
    sweep = Sweep("k", "from-scratch", "", lambda p: [], None, key_fields=("variant", "n_pairs"))
    config = {"n_pairs": 8, "variant": "small random init (scale 0.1)", "eta": 1.0}
    key = sweep.key(config)
    assert re.fullmatch(r"variant-small_random_init_scale_0.1-n_pairs-8-[0-9a-f]{8}", key), key
    assert sweep.key(dict(reversed(list(config.items())))) == key
    assert sweep.key({**config, "eta": 0.5}) != key
    assert sweep.key({**config, "extra": None}) != key
    assert Sweep("k", "from-scratch", "", lambda p: [], None).key(config).startswith("run-")
    assert sweeps.digest(config) == sweeps.digest(json.loads(json.dumps(config)))


@pytest.fixture
def counting_registered(monkeypatch):
    calls = []
    monkeypatch.setitem(sweep_registry.SWEEPS, "test-counting", counting_sweep(calls))
    return calls


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["sweep", "no-such-sweep"], ["'no-such-sweep'", "musat-stress", "singh-data"]),
        (["merge", "no-such-sweep"], ["'no-such-sweep'"]),
        (["sweep", "test-counting", "--shard", "3/2"], ["--shard '3/2'", "0/2 ... 1/2"]),
        (["sweep", "test-counting", "--shard", "0/0"], ["--shard '0/0'", "n >= 1"]),
        (["sweep", "test-counting", "--shard", "x"], ["--shard 'x'", "i/n"]),
        (["sweep", "test-counting", "--shard", "1/2/3"], ["--shard '1/2/3'"]),
        (["sweep", "test-counting", "-p", "steps", "0"], ["steps = 0", "[1, 200000]"]),
        (["sweep", "test-counting", "-p", "stepz", "5"], ["stepz"]),
        (["sweep", "test-counting", "--device", "tpu"], ["device = 'tpu'"]),
    ],
    ids=["unknown-sweep", "unknown-merge", "shard-too-large", "zero-shards", "shard-not-a-fraction",
         "shard-three-parts", "bad-parameter", "unknown-parameter", "bad-device"],
)
def test_bad_input_exits_2_with_a_message_before_any_run(counting_registered, tmp_path, capsys, args, fragments):
    assert main([*args, "--results", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert all(fragment in error for fragment in fragments), error
    assert counting_registered == [] and not list(tmp_path.iterdir())


def test_bad_shard_exits_2_from_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ihcore", "sweep", "musat-stress", "--shard", "3/2", "--results",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--shard '3/2' is invalid" in result.stderr
    assert not list(tmp_path.iterdir())


def test_sweep_and_merge_commands(counting_registered, tmp_path, capsys):
    assert main(["merge", "test-counting", "--results", str(tmp_path), "--shards", "2"]) == 1
    assert "7 of 7 results missing" in capsys.readouterr().err
    assert main(["sweep", "test-counting", "-p", "seed", "0", "--shard", "1/2", "--results", str(tmp_path)]) == 0
    assert counting_registered == [1, 3, 5]
    assert main(["sweep", "test-counting", "--results", str(tmp_path), "--device", "cpu"]) == 0
    assert counting_registered == [1, 3, 5, 0, 2, 4, 6]
    assert main(["merge", "test-counting", "--results", str(tmp_path)]) == 0
    assert len(json.loads((tmp_path / "test-counting.json").read_text())["runs"]) == 7


def test_sweeps_lists_every_sweep_with_its_chapter_and_runs(capsys):
    assert main(["sweeps"]) == 0
    out = capsys.readouterr().out
    for sweep in sweep_registry.SWEEPS.values():
        assert f"{sweep.name} [{sweep.chapter}]: {sweep.count(sweep.parameters())} run" in out
    assert {"musat-stress", "musat-scaling", "wang-grid", "singh-clamps", "singh-data"} <= set(sweep_registry.SWEEPS)


# Small parameters under which one run of each registered sweep takes seconds.
TINY = {
    "musat": {"n_max_full": 2, "stress_n_max": 4, "tau_factor": 1.0, "batch_size": 8, "ref_batch_size": 8,
              "ref_tau_factor": 1.0, "theorem2_tau_factor": 1.0},
    "wang": {"time": 10.0, "unnormalised_time": 10.0, "n_train": 64, "n_eval": 64, "sweep_max_length": 32},
    "singh": {"steps": 10, "slow_steps": 10, "clamp_steps": 10, "sweep_steps": 10, "eval_every": 5, "n_heads": 2,
              "d_model": 8, "item_dim": 8, "n_classes": 4, "sweep_classes": 5, "sweep_labels": 6},
    "across": {"n_seeds": 2, "order_steps": 100, "singh_n_max": 3, "musat_n_max": 4},
}


TINY_STEPS = 100  # the recipe sweeps fix their runs' lengths (thousands of steps): the test caps them


def at_most_tiny_steps(build):
    """``build`` with every configuration's ``steps`` capped at :data:`TINY_STEPS`."""
    def capped(*args):
        return [replace(c, steps=min(c.steps, TINY_STEPS)) if hasattr(c, "steps") else c for c in build(*args)]
    return capped


@pytest.mark.parametrize("name", list(sweep_registry.SWEEPS))
def test_every_registered_sweep_runs_and_stores_a_run(name, tmp_path):
    sweep = sweep_registry.SWEEPS[name]
    sweep = replace(sweep, build=at_most_tiny_steps(sweep.build))
    p = sweep.parameters(TINY[sweep.chapter])
    configs = sweep.configs(p, sweeps.prepared(sweep, p, tmp_path))
    assert len(configs) == sweep.count(p) and len({sweep.key(c) for c in configs}) == len(configs)
    (result,) = sweeps.run_sweep(sweep, p, tmp_path, shard=(0, len(configs)), progress=False)
    stored = sweeps._load(sweeps.result_path(sweep, configs[0], tmp_path))
    assert sweeps.canonical(stored["config"]) == sweeps.canonical(configs[0])
    assert sweeps.canonical(stored["result"]) == sweeps.canonical(result)


def test_the_musat_builders_give_the_chapters_scaling_and_stress_lists():
    """The Musat builders at one seed (the Singh builders' per-seed lists are tested in tests/singh)."""
    from ihcore.book.chapters import MUSAT
    from ihcore.musat import minimal_runs

    P = MUSAT.parameters.validate({"n_max_full": 16, "dim": 34, "n_seeds": 1})
    base = minimal_runs.MinimalRunConfig(dim=P.dim, eta=P.eta, batch_size=P.batch_size, seed=P.seed,
                                         tau_factor=P.tau_factor)
    expected = [replace(base, n_pairs=n, data="orthonormal") for n in (2, 4, 8, 16)]
    assert minimal_runs.scaling_configs(P) == expected
    assert [c.tau_max for c in expected] == [P.tau_factor * n**2 for n in (2, 4, 8, 16)]
    assert minimal_runs.stress_configs(P) == [
        replace(base, **changes, n_pairs=n, variant=variant)
        for variant, changes in minimal_runs.STRESS_VARIANTS.items() for n in (P.stress_n_max // 2, P.stress_n_max)]



def test_a_chapter_gets_the_same_results_in_memory_and_through_result_files(counting_registered, tmp_path):
    sweep = sweep_registry.SWEEPS["test-counting"]
    in_memory = sweeps.run_or_load(sweep, sweep.parameters(), "", progress=False)
    through_files = sweeps.run_or_load(sweep, sweep.parameters(), tmp_path, progress=False)
    assert sweeps.canonical(in_memory) == sweeps.canonical(through_files)
    again = sweeps.run_or_load(sweep, sweep.parameters(), tmp_path, progress=False)
    assert sweeps.canonical(again) == sweeps.canonical(through_files)
    assert counting_registered == list(range(7)) * 2  # the second call through files recomputed nothing


def test_the_musat_chapter_takes_its_defaults_from_the_run_configurations():
    from ihcore.book.chapters import MUSAT
    from ihcore.musat import MinimalRunConfig, StandardRunConfig

    defaults = MUSAT.parameters.defaults()
    minimal, standard = MinimalRunConfig(), StandardRunConfig()
    for name in ("dim", "n_pairs", "eta", "batch_size", "tau_factor"):
        assert defaults[name] == getattr(minimal, name), name
    for name in ("n_pairs", "n_tokens", "d_model", "steps", "lr", "batch_size"):
        assert defaults[f"std_{name}"] == getattr(standard, name), name
    assert defaults["dim"] == 20  # what the committed notebook ran


@pytest.mark.parametrize("name", ["musat-scaling", "musat-flow"])
def test_a_musat_run_through_the_registry_equals_a_direct_run(name, tmp_path):
    from ihcore.musat import flow_runs, minimal_runs

    sweep = sweep_registry.SWEEPS[name]
    assert sweep.run is {"musat-scaling": minimal_runs.run, "musat-flow": flow_runs.run}[name]
    p = sweep.parameters({"n_max_full": 2, "tau_factor": 1.0, "batch_size": 8, "n_max_reduced": 16})
    config = sweep.configs(p)[0]
    direct = sweep.run(config, progress=False)
    (through_files,) = sweeps.run_sweep(sweep, p, tmp_path, shard=(0, len(sweep.configs(p))), progress=False)
    in_memory = sweeps.run_or_load(sweep, p, "", progress=False)[0]
    assert sweeps.canonical(direct) == sweeps.canonical(through_files) == sweeps.canonical(in_memory)


def preparing_sweep(prepare_calls: list) -> Sweep:
    """A sweep whose configurations depend on a prepared value (as Singh's depend on the baseline's heads)."""
    def prepare(p):
        prepare_calls.append(p.seed)
        return {"head": 3}

    def build(p, prepared):
        return [{"i": i, "head": prepared["head"]} for i in range(2)]

    def run(config, progress=False):
        return {"i": config["i"], "head": config["head"]}

    return Sweep("test-preparing", "from-scratch", "test only", build, run, key_fields=("i",), prepare=prepare)


def test_a_known_preparation_is_used_instead_of_computed_in_memory_and_through_files(tmp_path):
    calls = []
    sweep = preparing_sweep(calls)
    p = sweep.parameters()
    assert sweeps.run_or_load(sweep, p, preparation={"head": 3}) == sweeps.run_or_load(sweep, p)
    assert calls == [0]  # only the run without a known preparation computed it
    assert sweeps.run_or_load(sweep, p, tmp_path, preparation={"head": 5}) == [{"i": 0, "head": 5}, {"i": 1, "head": 5}]
    assert calls == [0]
    assert sweeps.prepared(sweep, p, tmp_path, compute=False) == {"head": 5}  # stored for every later shard
    assert sweeps.run_or_load(sweep, p, tmp_path, preparation={"head": 7})[0]["head"] == 5  # the stored value wins


def test_merge_refuses_a_result_file_whose_configuration_is_not_its_keys(tmp_path):
    sweep = counting_sweep([])
    p = sweep.parameters()
    sweeps.run_sweep(sweep, p, tmp_path, progress=False)
    config = sweep.configs(p)[2]
    path = sweeps.result_path(sweep, config, tmp_path)
    stored = json.loads(path.read_text())
    stored["config"]["scale"] = 0.25  # a file copied from another configuration under this key
    write_json_atomic(path, stored)
    with pytest.raises(ValueError, match="another configuration"):
        sweeps.merge(sweep, p, tmp_path)


def test_a_sweep_with_run_many_runs_chunks_and_gives_what_run_gives(tmp_path):
    calls, chunks = [], []
    plain = counting_sweep(calls)

    def run_many(configs, progress=False):
        chunks.append([c["i"] for c in configs])
        return [plain.run(c) for c in configs]

    batched = replace(plain, name="test-batched", run_many=run_many, chunk=3)
    p = plain.parameters()
    assert [r["i"] for r in sweeps.run_or_load(batched, p)] == list(range(7))
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    on_disk = sweeps.run_sweep(batched, p, tmp_path, progress=False)
    assert chunks[3:] == [[0, 1, 2], [3, 4, 5], [6]]
    for a, b in zip(on_disk, sweeps.run_or_load(plain, p)):
        np.testing.assert_array_equal(a["x"], b["x"])
    sweeps.run_sweep(batched, p, tmp_path, progress=False)
    assert len(chunks) == 6  # finished runs are not run again


def test_a_compiled_sweep_says_so_in_its_files_and_its_shipped_commands(counting_registered, tmp_path, monkeypatch):
    monkeypatch.setattr(sweeps, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setenv(COMPILE_ENV, "0")  # restored after the test: the flag sets it for the process
    results = tmp_path / "results"
    assert main(["sweep", "test-counting", "--compile", "--results", str(results)]) == 0
    assert all(json.loads(path.read_text())["compiled"] for path in (results / "test-counting").glob("*.json"))
    assert main(["ship", "test-counting", "--results", str(results)]) == 0
    provenance = json.loads((tmp_path / "shipped" / "test-counting.json").read_text())["provenance"]
    assert provenance["execution"] == "compiled"
    assert provenance["commands"][0].startswith("python -m ihcore sweep test-counting --compile  (")
    assert "shipped, 7 runs (compiled, " in sweeps.source_text("test-counting", None, provenance)


def test_a_shipped_sweep_records_its_provenance_and_is_checked_against_the_sweep(counting_registered, tmp_path,
                                                                                  monkeypatch, capsys):
    monkeypatch.setattr(sweeps, "SHIPPED_DIR", tmp_path / "shipped")
    results = tmp_path / "results"
    assert main(["sweep", "test-counting", "-p", "seed", "3", "--shard", "0/2", "--results", str(results)]) == 0
    assert main(["ship", "test-counting", "-p", "seed", "3", "--results", str(results)]) == 1
    assert "results missing" in capsys.readouterr().err and not (tmp_path / "shipped").exists()
    assert main(["sweep", "test-counting", "-p", "seed", "3", "--shard", "1/2", "--results", str(results)]) == 0
    stored = json.loads(next((results / "test-counting").glob("i-0-*.json")).read_text())
    assert stored["wall_s"] >= 0 and stored["cpu"] == sweeps.cpu_model() != ""
    assert main(["ship", "test-counting", "-p", "seed", "3", "--results", str(results)]) == 0
    sweep = sweep_registry.SWEEPS["test-counting"]
    p = sweep.parameters({"seed": 3})
    shipped = sweeps.load_shipped("test-counting", p)
    merged = sweeps.load_merged(sweeps.merge(sweep, p, results))
    assert shipped["runs"][4]["result"]["x"].tolist() == merged["runs"][4]["result"]["x"].tolist()
    assert {k: shipped[k] for k in merged} == {**merged, "runs": shipped["runs"]}
    provenance = shipped["provenance"]
    assert provenance["commands"][1] == "python -m ihcore ship test-counting -p seed 3"
    assert provenance["cpus"] == [sweeps.cpu_model()] and provenance["runs"] == 7 and provenance["wall_s"] >= 0
    assert provenance["execution"] == "eager" and "--compile" not in provenance["commands"][0]
    with pytest.raises(sweeps.ShippedMismatch, match="other parameters .*seed"):
        sweeps.load_shipped("test-counting", sweep.parameters({"seed": 4}))
    calls = len(counting_registered)
    results, provenance = sweeps.shipped_or_run(sweep, p)
    assert len(counting_registered) == calls and provenance == shipped["provenance"]
    assert [r["i"] for r in results] == list(range(7))
    assert "shipped, 7 runs" in sweeps.source_text("test-counting", results, provenance)
    assert sweeps.shipped_or_run(sweep, sweep.parameters({"seed": 4}), compute=False) == (None, None)
    results, provenance = sweeps.shipped_or_run(sweep, sweep.parameters({"seed": 4}))
    assert len(counting_registered) == calls + 7 and provenance is None and len(results) == 7
    assert sweeps.source_text("test-counting", results, None) == "`test-counting`: computed here"
    monkeypatch.setitem(sweep_registry.SWEEPS, "test-counting", counting_sweep([], n_runs=6))
    with pytest.raises(sweeps.ShippedMismatch, match="other configurations"):
        sweeps.load_shipped("test-counting", p)
    with pytest.raises(FileNotFoundError, match="python -m ihcore ship no-such"):
        sweeps.load_shipped("no-such")


@pytest.mark.parametrize("path", sorted((ROOT / "data" / "shipped").glob("*.json")), ids=lambda path: path.stem)
def test_every_shipped_file_holds_its_sweeps_configurations_at_its_parameters(path):
    stored = json.loads(path.read_text())
    sweep = sweep_registry.get_sweep(path.stem)
    shipped = sweeps.load_shipped(path.stem, sweep.parameters(stored["parameters"]))
    assert shipped["provenance"]["runs"] == len(shipped["runs"]) > 0
    assert shipped["provenance"]["cpus"] and "not recorded" not in shipped["provenance"]["cpus"]
