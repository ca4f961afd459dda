"""The pipeline side of a benchmark: make-dataset, train and evaluate against a running cluster.

Run by ``benchmarks/run.py`` as its own process (so the client's memory is
measured apart from the harness), connected to the scheduler that the harness
started.  It times each step, splits evaluate into scoring and report
rendering, sums the workers' task time per task kind from Dask's task stream,
and optionally saves a ``distributed.performance_report`` per step.  The CSV
and the output folder may be ``s3://`` URLs (the store's endpoint and keys come
from AWS_* in the environment, as for the steps).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from dask.utils import key_split
from distributed import Client, get_task_stream, performance_report

import pipeline.report.render as render_module
from benchmarks.common import code_fingerprint
from pipeline.csv_input import DEFAULT_BLOCKSIZE
from pipeline.model_file import load_model
from pipeline.steps.evaluate import evaluate
from pipeline.steps.make_dataset import make_dataset
from pipeline.steps.predict import predict
from pipeline.steps.train import train

log = logging.getLogger("benchmarks.pipeline_client")


def summarise_task_stream(records: list[dict], t0: float) -> dict:
    """Worker seconds per task kind and per action (compute, transfer, disk I/O).

    ``span_by_task`` gives, per task kind, the first start and last stop of its
    compute in seconds from ``t0`` (the stage's start, epoch seconds): the phases of a step.
    """
    by_kind: dict[str, float] = defaultdict(float)
    by_action: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    span: dict[str, list[float]] = {}
    for rec in records:
        kind = key_split(rec.get("key"))
        count[kind] += 1
        for ss in rec.get("startstops", ()):
            seconds = ss["stop"] - ss["start"]
            by_action[ss["action"]] += seconds
            if ss["action"] == "compute":
                by_kind[kind] += seconds
                lo, hi = span.get(kind, (ss["start"], ss["stop"]))
                span[kind] = [min(lo, ss["start"]), max(hi, ss["stop"])]
    top = sorted(by_kind.items(), key=lambda kv: -kv[1])
    return {
        "compute_seconds_by_task": {k: round(v, 3) for k, v in top},
        "tasks_by_kind": dict(count),
        "seconds_by_action": {k: round(v, 3) for k, v in by_action.items()},
        "span_by_task": {k: [round(lo - t0, 2), round(hi - t0, 2)] for k, (lo, hi) in
                         sorted(span.items(), key=lambda kv: kv[1][0])},
    }


def summarise_profile(tree: dict, top: int = 25) -> dict:
    """Hot spots of a Dask statistical profile (merged over the workers).

    ``self`` counts samples where a function was the innermost frame, ``cumulative``
    those where it was anywhere on the stack (once per sample); both as shares of all
    samples, over the worker threads' busy time.
    """
    total = tree.get("count", 0) or 1
    own: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = defaultdict(int)

    def name(node: dict) -> str:
        d = node.get("description", {})
        path = str(d.get("filename", "?"))
        for marker in ("site-packages/", "/pipeline/", "lib/python3.11/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        return f"{d.get('name', '?')} ({path}:{d.get('line_number', '?')})"

    def walk(node: dict, seen: frozenset) -> None:
        children = node.get("children", {}).values()
        label = name(node)
        if label not in seen:
            cumulative[label] += node.get("count", 0)
            seen = seen | {label}
        own[label] += node.get("count", 0) - sum(c.get("count", 0) for c in children)
        for child in children:
            walk(child, seen)

    for child in tree.get("children", {}).values():
        walk(child, frozenset())

    def share(d: dict[str, int]) -> dict[str, float]:
        best = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return {k: round(v / total, 4) for k, v in best if v > 0}

    return {"samples": tree.get("count", 0), "self": share(own),
            "cumulative": share(cumulative)}


class Stages:
    """Time the steps, with a task stream and an optional performance report each."""

    def __init__(self, client: Client, profile_dir: Path | None):
        self.client = client
        self.profile_dir = profile_dir
        self.results: dict[str, dict] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        info: dict = {}
        report = (performance_report(filename=str(self.profile_dir / f"{name}.html"))
                  if self.profile_dir else contextlib.nullcontext())
        start_epoch = time.time()
        t0 = time.perf_counter()
        with report, get_task_stream(self.client) as ts:
            yield info
            seconds = time.perf_counter() - t0
        if self.profile_dir:
            prof = self.client.profile(start=start_epoch, stop=start_epoch + seconds + 1)
            (self.profile_dir / f"{name}-hotspots.json").write_text(
                json.dumps(summarise_profile(prof), indent=2))
        info.update({
            "seconds": round(seconds, 3),
            "start": start_epoch,
            "stop": start_epoch + seconds,
            **summarise_task_stream(ts.data, start_epoch),
        })
        self.results[name] = info
        log.info("%s: %.1f s", name, seconds)


def timed_render():
    """Wrap the report's writing so evaluate's report time is known apart from scoring."""
    owner, name = render_module, "write_report"
    original = getattr(owner, name)
    spent = {"seconds": 0.0}

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - t0

    setattr(owner, name, wrapper)
    return spent


def _outputs(out_dir: str) -> Callable[[str], str | Path]:
    """Name an output under ``out_dir``: a local folder (created), or an object-store URL.

    URLs stay strings, as the CLI passes them (``pathlib`` would fold ``s3://`` to ``s3:/``).
    """
    if "://" in out_dir:
        return lambda name: f"{out_dir.rstrip('/')}/{name}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return lambda name: out / name


def run(args: argparse.Namespace) -> dict:
    output = _outputs(args.out_dir)
    dataset, model_path, report = output("dataset"), output("model.joblib"), output("report.html")
    if "://" in args.out_dir or "://" in args.csv:
        import s3fs  # noqa: F401 - the client's own imports are not timed either
    with Client(scheduler_file=str(args.scheduler_file), timeout="60s") as client:
        client.wait_for_workers(args.workers, timeout=180)
        pids = {
            "scheduler": client.run_on_scheduler(_pid),
            "workers": client.run(_pid),
        }
        # Workers and the scheduler import the step code once, as a long-lived (Compose)
        # cluster would have; the reference's imports are not timed either.  The scheduler
        # counts: it unpickles each graph, so its first Parquet-reading graph imported
        # dask.dataframe inside the timed train step (measured: 1.4 s before any task ran).
        # On an object store, its client library too (a long-lived cluster has it loaded).
        remote = "://" in args.out_dir or "://" in args.csv
        t0 = time.perf_counter()
        client.run(_warm_up, remote)
        client.run_on_scheduler(_warm_up, remote)
        warm = round(time.perf_counter() - t0, 3)
        stages = Stages(client, args.profile_dir)
        with stages.stage("make_dataset") as info:
            totals = make_dataset(args.csv, dataset, blocksize=args.blocksize)
            info["counts"] = totals
        # The reference fits the linear model only; ask train for the same where it can choose.
        kwargs = ({"model_kind": args.model}
                  if "model_kind" in inspect.signature(train).parameters else {})
        with stages.stage("train") as info:
            train(dataset, model_path, seed=args.seed, **kwargs)
            meta = load_model(model_path).metadata
            info["model_kind_requested"] = kwargs.get("model_kind", "(train has no choice)")
            info["model"] = meta.get("model")
            info["fit"] = meta.get("train", {})
            info["valid_metrics"] = meta.get("valid_metrics", {})
        render = timed_render()
        with stages.stage("evaluate") as info:
            metrics = evaluate(dataset, model_path, report)
            info["render_seconds"] = round(render["seconds"], 3)
            info["metrics"] = {"model": metrics["model"], "baselines": metrics["baselines"],
                               "rows": metrics["rows"]}
        info["scoring_seconds"] = round(info["seconds"] - info["render_seconds"], 3)
        if not args.no_predict:
            # The client's recurring job: the whole CSV scored as an inventory.
            with stages.stage("predict") as info:
                scored = predict(model_path, args.csv, output("predictions.csv"),
                                 blocksize=args.blocksize)
                info["rows"] = scored["rows"]
    return {"pids": pids, "warm_up_seconds": warm, "code": code_fingerprint(),
            "dashboard_link": client.dashboard_link, "stages": stages.results}


def _pid() -> int:
    import os

    return os.getpid()


def _warm_up(remote: bool = False) -> None:
    import importlib

    for name in ("lightgbm", "pyarrow.parquet", "sklearn.linear_model",
                 "pipeline.features", "pipeline.distributed.fit", "pipeline.steps.evaluate",
                 "pipeline.steps.make_dataset", "pipeline.steps.predict",
                 "pipeline.steps.train", *(("s3fs", "upath") if remote else ())):
        importlib.import_module(name)
    from pipeline.csv_records import scan_block

    # Compiled code is loaded from numba's cache on first call: a long-lived worker has it.
    scan_block(b"a,b\n1,2\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler-file", type=Path, required=True)
    parser.add_argument("--workers", type=int, required=True)
    # A local path or an s3:// URL (the store's endpoint and keys from AWS_* in the env).
    parser.add_argument("--csv", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--blocksize", default=DEFAULT_BLOCKSIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-dir", type=Path, default=None)
    parser.add_argument("--model", default="auto", help="train's model kind, where it has one")
    parser.add_argument("--no-predict", action="store_true", help="do not time predict")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    result = run(args)
    args.result.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
