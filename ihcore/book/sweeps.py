"""Sweeps: sets of independent runs, one result file per run, resumable and shardable.

A :class:`Sweep` turns a chapter's validated parameters ``p`` into a list of run
configurations (the study's own config dataclasses, built by the study's own functions) and
runs each with the study's ``run(config, *, device=None, progress=None)``, the one run
interface of every study (``device`` None: the current device, see :mod:`ihcore.spine.devices`).
:func:`run_sweep` writes each run's result to ``<results_dir>/<sweep>/<key>.json`` as soon as
it finishes, atomically, and skips configurations whose file exists, so a killed sweep
resumes where it stopped and shards (``shard=(i, n)``: configuration k belongs to shard
k mod n) can run on different machines into one folder. :func:`merge` collects every
configuration's result, in configuration order, into ``<results_dir>/<sweep>.json``.

The key of a configuration is a readable prefix (the sweep's ``key_fields``) and the first
8 hex digits of the SHA-256 of its canonical JSON (sorted keys), e.g.
``n_pairs-8-3f2a9c1e``: the same configuration always has the same key, whatever the
order of its dict, and a changed configuration gets a new file.

Result files hold ``{"config": ..., "result": ...}`` in JSON (:func:`encode`):

* numpy arrays become ``{"__ndarray__": dtype, "shape": [...], "data": [...]}`` and come
  back exactly (float64 repr is exact; float16/32 values widen to float64 exactly); NaN and
  ±inf are written as Python's json writes them (``NaN``, ``Infinity``), which
  :func:`json.load` reads back;
* numpy scalars come back as Python scalars, **tuples come back as lists**;
* a dataclass (a study's run configuration) is stored as the dict of its fields;
* dict keys must be strings; other types (tensors, models, ...) are refused with a
  TypeError rather than stored lossily.

A sweep may need something computed before its configurations exist (Singh's clamp runs
use the heads picked from a trained baseline): its ``prepare(p)`` result (a small JSON
dict) is stored once per parameter set in ``<results_dir>/_prepared/`` and read by every
shard, so all shards build the same configurations.

Each result file also records the run's wall time (``wall_s``, its share of a batched chunk),
the CPU it ran on (``cpu``, the ``lscpu`` model name) and whether its training steps were
compiled (``compiled``: ``sweep --compile``, see :mod:`ihcore.spine.train`; files without the
key are eager). Heavy sweeps (a study's paper-scale runs) are *shipped*: :func:`ship` collects
their results like :func:`merge` into ``data/shipped/<sweep>.json``, committed with the book,
with their provenance (the commands that regenerate them, the CPUs, the total wall time, the
torch version); a chapter reads them with :func:`load_shipped`, which can check that they are
the sweep's configurations at the stated parameters.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from tqdm import tqdm

from ihcore.book.chapters import BOOK_ROOT, SHIPPED_DIR, get_chapter
from ihcore.spine.claims import write_json_atomic
from ihcore.spine.reproducibility import cpu_model
from ihcore.spine.train import compiled_enabled, progress_enabled

RESULTS_DIR = BOOK_ROOT / "results"
NOT_IN_KEYS = ("show_progress", "device", "results_dir")  # parameters that do not change what a run computes
ARRAY_TAG = "__ndarray__"


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(value: Any) -> Any:
    """``value`` as plain JSON data; numpy arrays as tagged objects (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise TypeError(f"cannot store a numpy array of dtype {value.dtype}")
        return {ARRAY_TAG: str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return encode(value.item())
    if is_dataclass(value) and not isinstance(value, type):  # a study's run configuration
        return encode(asdict(value))
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"dict keys must be strings, got {sorted(map(repr, value))}")
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a result file")


def decode(value: Any) -> Any:
    """Inverse of :func:`encode` (tuples come back as lists)."""
    if isinstance(value, dict):
        if ARRAY_TAG in value:
            return np.array(value["data"], dtype=np.dtype(value[ARRAY_TAG])).reshape(value["shape"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """Canonical JSON of ``value``: encoded, sorted keys, no whitespace."""
    return json.dumps(encode(value), sort_keys=True, separators=(",", ":"))


def digest(value: Any) -> str:
    """First 8 hex digits of the SHA-256 of :func:`canonical`."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:8]


def _slug(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+]+", "_", text).strip("_") or "_"


# ---------------------------------------------------------------------------------------------
# Sweeps


@dataclass(frozen=True)
class Sweep:
    """A named list of independent runs of one chapter.

    ``build(p)`` (or ``build(p, prepared)`` when ``prepare`` is given) returns the run
    configurations from the chapter's validated parameters; ``run(config, progress=False)``
    (a study's ``run``) returns one result dict. ``key_fields``: configuration fields shown in result file names.
    ``prepare(p)``: what the configurations depend on beyond ``p`` (a small JSON dict);
    ``prepare_example`` stands in for it when only the number of runs is wanted.
    ``run_many(configs, progress=False)``: the study's batched run (e.g. the seeds of one
    setting trained as one ensemble, :func:`ihcore.spine.train.train_members`), returning
    one result per configuration, each equal to what ``run`` returns for it (to float
    rounding); given, the engine runs up to ``chunk`` configurations per call, and each
    chunk's results are written when it finishes.
    """

    name: str
    chapter: str
    description: str
    build: Callable[..., list[dict]]
    run: Callable[..., dict]
    key_fields: tuple[str, ...] = ()
    prepare: Callable[[SimpleNamespace], dict] | None = None
    prepare_example: dict = field(default_factory=dict)
    run_many: Callable[..., list[dict]] | None = None
    chunk: int = 10

    def run_all(self, configs: list, progress: bool | None = None) -> list[dict]:
        """Results of ``configs`` in order: ``run_many`` in chunks when the sweep has it, else ``run`` one by one."""
        if self.run_many is None:
            return [self.run(c, progress=False) for c in tqdm(configs, desc=self.name, unit="run",
                                                               disable=not progress_enabled(progress))]
        chunks = [configs[k:k + self.chunk] for k in range(0, len(configs), self.chunk)]
        bar = tqdm(chunks, desc=f"{self.name} ({self.chunk} runs a batch)", disable=not progress_enabled(progress))
        return [result for chunk in bar for result in self.run_many(chunk, progress=False)]

    def parameters(self, overrides: dict | None = None) -> SimpleNamespace:
        """The chapter's parameters: defaults with ``overrides`` (typed values), validated."""
        return get_chapter(self.chapter).parameters.validate(overrides or {})

    def configs(self, p: SimpleNamespace, prepared: dict | None = None) -> list[dict]:
        """The configurations at parameters ``p`` (runs ``prepare`` if needed and not given)."""
        if self.prepare is None:
            return self.build(p)
        return self.build(p, self.prepare(p) if prepared is None else prepared)

    def count(self, p: SimpleNamespace) -> int:
        """The number of runs at ``p``, without running ``prepare``."""
        return len(self.build(p, self.prepare_example) if self.prepare is not None else self.build(p))

    def key(self, config) -> str:
        """``<field>-<value>-...-<hash>``: readable prefix (at most 60 characters) and config hash."""
        fields = encode(config)
        prefix = "-".join(f"{name}-{_slug(fields[name])}" for name in self.key_fields if name in fields)
        return f"{prefix[:60].rstrip('-_') or 'run'}-{digest(config)}"


# ---------------------------------------------------------------------------------------------
# Running and merging


class MissingResults(RuntimeError):
    """:func:`merge` found configurations without a result file; the message says how to make them."""


def sweep_dir(sweep: Sweep, results_dir: Path | str | None = None) -> Path:
    return Path(results_dir or RESULTS_DIR) / sweep.name


def result_path(sweep: Sweep, config: dict, results_dir: Path | str | None = None) -> Path:
    return sweep_dir(sweep, results_dir) / f"{sweep.key(config)}.json"


def _chapter_values(sweep: Sweep, p: SimpleNamespace) -> dict:
    return {k: v for k, v in vars(p).items() if k not in NOT_IN_KEYS}


def prepared_path(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None = None) -> Path:
    """``<results_dir>/_prepared/<chapter>-<prepare function>-<hash of p>.json``."""
    return (Path(results_dir or RESULTS_DIR) / "_prepared"
            / f"{sweep.chapter}-{sweep.prepare.__name__}-{digest(_chapter_values(sweep, p))}.json")


def prepared(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None = None, compute: bool = True,
             known: dict | None = None) -> dict | None:
    """``sweep.prepare(p)``, computed once and stored (None for a sweep without ``prepare``,
    or when it is not stored yet and ``compute`` is False). ``known``: the value of
    ``sweep.prepare(p)`` the caller already has (a chapter that trained the same baseline),
    stored instead of computed; a value already stored wins, so every shard uses one."""
    if sweep.prepare is None:
        return None
    path = prepared_path(sweep, p, results_dir)
    if path.exists():
        return decode(json.loads(path.read_text())["prepared"])
    if known is None and not compute:
        return None
    value = sweep.prepare(p) if known is None else known
    if path.exists():  # a shard started at the same time stored it first: every shard uses that one
        return decode(json.loads(path.read_text())["prepared"])
    write_json_atomic(path, {"parameters": encode(_chapter_values(sweep, p)), "prepared": encode(value)})
    return value


def _remove_stale_temporaries(directory: Path, keys: set[str]) -> None:
    """Delete temp files a killed run left for ``keys`` (only this shard's: other shards may be writing theirs)."""
    for temporary in directory.glob(".*.json.*.tmp"):
        key = temporary.name[1:].split(".json.", 1)[0]
        if key in keys:
            temporary.unlink(missing_ok=True)


def _load(path: Path) -> dict:
    return decode(json.loads(path.read_text(encoding="utf-8")))


def run_sweep(
    sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None = None, shard: tuple[int, int] = (0, 1),
    progress: bool | None = None, preparation: dict | None = None,
) -> list[dict]:
    """Run the configurations of shard ``i`` of ``n`` (configuration k is in shard k mod n)
    that have no result file yet, writing each result as it finishes. ``preparation``: a
    known value of ``sweep.prepare(p)`` (see :func:`prepared`).

    Returns the shard's results in configuration order (finished ones read from their files).
    """
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard {index}/{count} is invalid: expected i/n with n >= 1 and 0 <= i < n")
    configs = sweep.configs(p, prepared(sweep, p, results_dir, known=preparation))
    mine = [(sweep.key(config), config) for k, config in enumerate(configs) if k % count == index]
    directory = sweep_dir(sweep, results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory, {key for key, _ in mine})
    todo = [(key, config) for key, config in mine if not (directory / f"{key}.json").exists()]
    step = sweep.chunk if sweep.run_many is not None else 1
    chunks = [todo[k:k + step] for k in range(0, len(todo), step)]
    bar = tqdm(chunks, desc=f"{sweep.name} {index}/{count}", unit=f"×{step} runs" if step > 1 else "run",
               disable=not progress_enabled(progress))
    cpu, compiled = cpu_model(), compiled_enabled(None)
    for chunk in bar:  # the sweep's bar replaces the runs'
        start = time.perf_counter()
        results = sweep.run_all([config for _, config in chunk], progress=False)
        wall = (time.perf_counter() - start) / len(chunk)
        for (key, config), result in zip(chunk, results):
            write_json_atomic(directory / f"{key}.json", {"config": encode(config), "result": encode(result),
                                                          "wall_s": wall, "cpu": cpu, "compiled": compiled})
    return [_load(directory / f"{key}.json")["result"] for key, _ in mine]


def run_or_load(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str = "", progress: bool | None = None,
                preparation: dict | None = None) -> list[dict]:
    """Every result of ``sweep`` at ``p``, in configuration order: computed in memory when
    ``results_dir`` is empty, else through :func:`run_sweep`'s result files there (finished runs,
    e.g. from shards run elsewhere, are read, not recomputed). A relative ``results_dir`` is
    taken from the repository root (a chapter's kernel runs elsewhere), so ``results`` is the
    folder ``python -m ihcore sweep`` fills by default. ``preparation``: the value of
    ``sweep.prepare(p)`` when the chapter already has it, so it is not computed again.
    A chapter's way to run its sweeps."""
    if results_dir:
        return run_sweep(sweep, p, BOOK_ROOT / results_dir, progress=progress, preparation=preparation)
    return sweep.run_all(sweep.configs(p, preparation), progress=progress)


def parameter_flags(sweep: Sweep, p: SimpleNamespace) -> str:
    """``-p NAME VALUE`` for each parameter of ``p`` that differs from the chapter's default."""
    defaults = get_chapter(sweep.chapter).parameters.defaults()
    return "".join(f" -p {name} {value!r}" if isinstance(value, str) else f" -p {name} {value}"
                   for name, value in vars(p).items() if value != defaults.get(name))


def _collect(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None, shards: int | None,
             ) -> tuple[dict | None, list[dict], list[dict]]:
    """(prepared, runs as {key, config, result}, the stored result files) of every configuration,
    in configuration order; :class:`MissingResults` if one has no file (see :func:`merge`)."""
    command = f"python -m ihcore sweep {sweep.name}{parameter_flags(sweep, p)}"
    if results_dir is not None:
        command += f" --results {results_dir}"
    done = prepared(sweep, p, results_dir, compute=False)
    if sweep.prepare is not None and done is None:
        raise MissingResults(f"{sweep.name}: nothing has run at these parameters yet "
                             f"(no {prepared_path(sweep, p, results_dir)}); run: {command}")
    configs = sweep.configs(p, done)
    directory = sweep_dir(sweep, results_dir)
    runs, files, missing = [], [], []
    for k, config in enumerate(configs):
        key = sweep.key(config)
        path = directory / f"{key}.json"
        if not path.exists():
            missing.append((k, key))
            continue
        stored = json.loads(path.read_text(encoding="utf-8"))
        if canonical(stored["config"]) != canonical(config):
            raise ValueError(f"{path} holds another configuration than the one of key {key}")
        runs.append({"key": key, "config": stored["config"], "result": stored["result"]})
        files.append(stored)
    if missing:
        listed = ", ".join(key for _, key in missing[:5]) + (", ..." if len(missing) > 5 else "")
        if shards:
            needed = sorted({k % shards for k, _ in missing})
            how = "; ".join(f"{command} --shard {i}/{shards}" for i in needed)
        else:
            how = (f"{command} (finished runs are skipped); with --shard i/n, configuration k is in shard "
                   f"k mod n (missing: k = {', '.join(str(k) for k, _ in missing)})")
        raise MissingResults(f"{sweep.name}: {len(missing)} of {len(configs)} results missing ({listed}); run: {how}")
    return done, runs, files


def _merged(sweep: Sweep, p: SimpleNamespace, done: dict | None, runs: list[dict]) -> dict:
    return {"sweep": sweep.name, "chapter": sweep.chapter, "parameters": encode(_chapter_values(sweep, p)),
            "prepared": encode(done), "runs": runs}


def merge(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None = None, shards: int | None = None) -> Path:
    """Write ``<results_dir>/<sweep>.json``: the sweep, its parameters and every configuration's
    ``key``, ``config`` and ``result``, in configuration order (atomic; the same bytes however
    the runs were sharded).

    Raises :class:`MissingResults` if a result is missing, naming how many, which, and the
    commands that produce them (the shard commands for ``shards`` = n if given).
    """
    done, runs, _ = _collect(sweep, p, results_dir, shards)
    target = Path(results_dir or RESULTS_DIR) / f"{sweep.name}.json"
    write_json_atomic(target, _merged(sweep, p, done, runs))
    return target


def ship(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str | None = None, shards: int | None = None,
         shipped_dir: Path | str | None = None) -> Path:
    """Write ``<shipped_dir>/<sweep>.json`` (default ``data/shipped/``): what :func:`merge` writes,
    plus ``provenance``: ``commands`` (the sweep and ship commands that regenerate the file),
    ``cpus`` (the ``lscpu`` model names the runs ran on), ``wall_s`` (their total wall time,
    seconds), ``runs``, ``execution`` ("eager", "compiled" or "eager and compiled": how the runs'
    steps ran; the sweep command carries ``--compile`` when every run was compiled), ``torch`` and
    ``python`` (versions of this process)."""
    import torch

    done, runs, files = _collect(sweep, p, results_dir, shards)
    flags = parameter_flags(sweep, p)
    executions = sorted({"compiled" if stored.get("compiled") else "eager" for stored in files}, reverse=True)
    compile_flag = " --compile" if executions == ["compiled"] else ""
    provenance = {
        "commands": [f"python -m ihcore sweep {sweep.name}{flags}{compile_flag}  (resumable; shard with --shard i/n)",
                     f"python -m ihcore ship {sweep.name}{flags}"],
        "cpus": sorted({stored.get("cpu", "not recorded") for stored in files}),
        "wall_s": round(sum(stored.get("wall_s", 0.0) for stored in files), 1),
        "runs": len(runs), "execution": " and ".join(executions),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    target = Path(shipped_dir or SHIPPED_DIR) / f"{sweep.name}.json"
    write_json_atomic(target, {**_merged(sweep, p, done, runs), "provenance": provenance})
    return target


class ShippedMismatch(ValueError):
    """:func:`load_shipped`: the shipped file was made at other parameters, or holds other configurations."""


def load_shipped(name: str, p: SimpleNamespace | None = None, shipped_dir: Path | str | None = None) -> dict:
    """The shipped results of sweep ``name``, decoded (``runs`` as in :func:`load_merged`, plus
    ``provenance``). With ``p`` (validated chapter parameters), check first that they were
    made at ``p`` and are exactly the sweep's configurations there: :class:`ShippedMismatch`
    otherwise (FileNotFoundError when nothing is shipped)."""
    path = Path(shipped_dir or SHIPPED_DIR) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no shipped results for sweep {name!r} ({path}); "
                                f"make them with `python -m ihcore sweep {name} ...` then `python -m ihcore ship {name} ...`")
    stored = json.loads(path.read_text(encoding="utf-8"))
    if p is not None:
        from ihcore.book.sweep_registry import get_sweep

        sweep = get_sweep(name)
        wanted = encode(_chapter_values(sweep, p))
        if canonical(stored["parameters"]) != canonical(wanted):
            changed = sorted(k for k in set(wanted) | set(stored["parameters"])
                             if stored["parameters"].get(k) != wanted.get(k))
            raise ShippedMismatch(f"{path} was made at other parameters than asked for (differ: {', '.join(changed)})")
        configs = [canonical(c) for c in sweep.configs(p, decode(stored["prepared"]))]
        if configs != [canonical(run["config"]) for run in stored["runs"]]:
            raise ShippedMismatch(f"{path} holds other configurations than sweep {name!r} builds at these parameters")
    return decode(stored)


def shipped_or_run(sweep: Sweep, p: SimpleNamespace, results_dir: Path | str = "", progress: bool | None = None,
                   compute: bool = True) -> tuple[list[dict] | None, dict | None]:
    """``(results, provenance)`` of ``sweep`` at ``p``, in configuration order: the shipped results
    and their provenance when ``data/shipped/`` holds them at ``p`` (checked by :func:`load_shipped`);
    else :func:`run_or_load`'s, with provenance None, or ``(None, None)`` when ``compute`` is False.
    A chapter's way to read its heavy sweeps, so that it still runs at any parameters."""
    try:
        shipped = load_shipped(sweep.name, p)
    except (FileNotFoundError, ShippedMismatch):
        return (run_or_load(sweep, p, results_dir, progress) if compute else None), None
    return [run["result"] for run in shipped["runs"]], shipped["provenance"]


def source_text(name: str, results: list[dict] | None, provenance: dict | None) -> str:
    """Where :func:`shipped_or_run`'s results of sweep ``name`` come from, in one line of Markdown."""
    if provenance is None:
        return f"`{name}`: " + ("computed here" if results is not None else "not run")
    commands = "` then `".join(command.split("  (")[0] for command in provenance["commands"])
    execution = provenance.get("execution", "eager")  # files shipped before it was recorded are eager
    compiled = "" if execution == "eager" else f"{execution}, "
    return (f"`{name}`: shipped, {provenance['runs']} runs ({compiled}{provenance['wall_s'] / 60:.0f} min on "
            f"{', '.join(provenance['cpus'])}, torch {provenance['torch']}); regenerate with `{commands}`")


def load_merged(path: Path | str) -> dict:
    """A merged file, decoded: ``runs`` is a list of {key, config, result}."""
    return _load(Path(path))
