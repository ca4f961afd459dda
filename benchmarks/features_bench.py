"""Micro-benchmark of feature hashing: FeatureSpec.transform against scikit-learn's way.

Synthetic rows come from the project's generator, written as the CSV that
``generate`` writes and read back and cleaned as make-dataset does (every column
a string, then ``clean_partition``); the real sample is read and cleaned the same
way.  Each feature group is timed in microseconds per row, on one core, for the
scikit-learn path (:func:`benchmarks.sklearn_features.sklearn_transform`, the
pipeline's features before they were compiled) and for the compiled path of
:meth:`FeatureSpec.transform` (:mod:`pipeline.hashing`, step by step), and the two
matrices are checked to be identical.  The compiled kernels are loaded or
compiled before timing; their first-call cost is measured apart, in fresh
processes with an empty and then a warm numba cache.

Usage (from the repository root)::

    python -m benchmarks.features_bench --rows 100000 --out features.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from benchmarks.sklearn_features import sklearn_transform  # noqa: E402
from pipeline import hashing  # noqa: E402
from pipeline.cleaning import clean_partition  # noqa: E402
from pipeline.csv_input import parse_block, read_header  # noqa: E402
from pipeline.features import NUMERIC_FEATURES, FeatureSpec, numeric_frame  # noqa: E402
from synth import generate_frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "wine_reviews_sample.csv"

GROUPS = ("description prep", "word count", "words+bigrams", "char 4-grams", "title",
          "categories", "bins", "numeric", "hstack")

#: Run in a fresh interpreter: import, then the first and second transform.
COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import pandas as pd
from pipeline import hashing
from pipeline.features import FeatureSpec
t1 = time.perf_counter()
df = pd.DataFrame({"description": ["Ripe fruit, firm tannins.", "Crème brûlée"],
                   "title": ["Domaine X 2015 Rosé", "Y 2010"], "price": [12.0, None],
                   "vintage": [2015.0, 2010.0], "country": ["France", None],
                   "variety": ["Rosé", "Red"], "taster_name": ["A B", None]})
hashing.char_classes()
spec = FeatureSpec().fit(df)
t2 = time.perf_counter()
spec.transform(df)
t3 = time.perf_counter()
spec.transform(df)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "char_classes_s": t2 - t1,
                  "first_call_s": t3 - t2, "second_call_s": t4 - t3}))
"""


def machine() -> dict:
    """CPU model, cores, load, library versions and the commit of the code measured."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version()}
    for name in ("numba", "scikit-learn", "numpy", "scipy", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    info = {"cpu_model": cpu, "cores_logical": os.cpu_count(),
            "load_average": list(os.getloadavg()), "versions": versions}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        info["git_commit"] = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True,
                                            text=True, timeout=10).stdout.strip()
        info["git_branch"] = subprocess.run([*git, "rev-parse", "--abbrev-ref", "HEAD"],
                                            capture_output=True, text=True,
                                            timeout=10).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "pipeline", "benchmarks"],
                                capture_output=True, text=True, timeout=10).stdout
        info["uncommitted_changes"] = bool(status.strip())
    return info


def cleaned_from_csv(path: Path) -> pd.DataFrame:
    """Read a CSV as make-dataset does (one block, every column a string) and clean it."""
    raw = parse_block(path.read_bytes(), read_header(path), has_header=True)
    clean, _ = clean_partition(raw, require_points=True)
    return clean


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Generated rows, through the generator's CSV layout and make-dataset's cleaning."""
    frame = generate_frame(rows, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, header=True, index=True, lineterminator="\n")
        return cleaned_from_csv(path)


class Laps:
    """Seconds per named step of one run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _numeric(spec: FeatureSpec, df: pd.DataFrame, words: np.ndarray) -> sp.csr_matrix:
    # FeatureSpec.transform's numeric block, the same on both paths.
    numeric = numeric_frame(df, words)[list(NUMERIC_FEATURES)].to_numpy(dtype="float64")
    mean = spec.numeric_mean_
    numeric = np.where(np.isnan(numeric), mean, numeric)
    numeric = (numeric - mean) / spec.numeric_std_ * spec.numeric_weight
    return sp.csr_matrix(numeric.astype(np.float32))


def _stack(blocks: list) -> sp.csr_matrix:
    return sp.hstack(blocks, format="csr", dtype=np.float32)


def fast_steps(spec: FeatureSpec, df: pd.DataFrame, lap: Laps) -> sp.csr_matrix:
    """FeatureSpec.transform's compiled hashing, one timed step per feature group."""
    with lap("description prep"):
        cps, starts = hashing.code_points(df["description"].fillna("").to_numpy())
    with lap("words+bigrams"):
        text = hashing.hash_words_code_points(cps, starts, spec.text_features, trim=False)
    with lap("char 4-grams"):  # and the word count
        chars, words = hashing.hash_char_wb4_code_points(cps, starts, spec.char_features,
                                                         trim=False, with_words=True)
        chars = chars * spec.char_weight
    del cps, starts
    with lap("title"):
        title = hashing.hash_words_code_points(
            *hashing.code_points(df["title"].fillna("").to_numpy()), spec.title_features,
            trim=False)
        title = title * spec.title_weight
    with lap("categories"):
        categories = hashing.hash_categories(df, spec.category_features)
        categories = categories * spec.category_weight
    with lap("bins"):
        bins = hashing.hash_bins(df, words, spec.bin_features) * spec.bin_weight
    with lap("numeric"):
        numeric = _numeric(spec, df, words)
    with lap("hstack"):
        return _stack([text, chars, title, categories, bins, numeric])


def same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    """Exactly equal: shape, dtypes, indptr, indices and the data's bits."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.indices.dtype == b.indices.dtype
            and a.indptr.dtype == b.indptr.dtype and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data.view(np.uint32), b.data.view(np.uint32)))


def measure(df: pd.DataFrame, spec: FeatureSpec, repeat: int, sklearn_repeat: int,
            whole_sklearn: bool) -> dict:
    """Per-group and whole-transform microseconds per row of both paths on ``df``."""
    rows = len(df)
    result: dict = {"rows": rows, "nnz_per_row": None, "groups": {}, "whole": {}}
    runs: dict[str, list[dict[str, float]]] = {"sklearn": [], "fast": []}
    expected = None
    for _ in range(sklearn_repeat):
        lap = Laps()
        expected = sklearn_transform(spec, df, lap)
        runs["sklearn"].append(lap.seconds)
    got = None
    for _ in range(repeat):
        lap = Laps()
        got = fast_steps(spec, df, lap)
        runs["fast"].append(lap.seconds)
    result["equal_stepwise"] = same_csr(got, expected)
    result["nnz_per_row"] = round(expected.nnz / rows, 1)
    del got
    whole = []
    for _ in range(repeat):
        start = time.perf_counter()
        got = spec.transform(df)
        whole.append(time.perf_counter() - start)
    result["whole"]["fast_us"] = round(min(whole) / rows * 1e6, 2)
    result["whole"]["fast_runs_s"] = [round(s, 4) for s in whole]
    result["equal_transform"] = same_csr(got, expected)
    del got, expected
    if whole_sklearn:
        start = time.perf_counter()
        sklearn_transform(spec, df)
        seconds = time.perf_counter() - start
        result["whole"]["sklearn_us"] = round(seconds / rows * 1e6, 2)
    for side, side_runs in runs.items():
        for name in GROUPS:
            if name not in side_runs[0]:
                continue
            best = min(r[name] for r in side_runs)
            entry = result["groups"].setdefault(name, {})
            entry[f"{side}_us"] = round(best / rows * 1e6, 2)
            entry[f"{side}_runs_s"] = [round(r[name], 4) for r in side_runs]
        total = min(sum(r.values()) for r in side_runs)
        result["whole"][f"{side}_sum_of_groups_us"] = round(total / rows * 1e6, 2)
    return result


def compile_times() -> dict:
    """First transform in fresh processes: empty numba cache, then warm cache."""
    out = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for name in ("cold_cache", "warm_cache"):
            done = subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"compile probe failed: {done.stderr[-2000:]}")
            out[name] = {k: round(v, 3) for k, v in json.loads(done.stdout).items()}
    return out


def _cell(entry: dict, side: str) -> str:
    value = entry.get(f"{side}_us")
    return "—" if value is None else f"{value:.1f}"


def _speedup(entry: dict) -> str:
    a, b = entry.get("sklearn_us"), entry.get("fast_us")
    return f"{a / b:.1f}×" if a and b else ""


def markdown(report: dict) -> str:
    """The per-group table of every data set, and the compile times."""
    names = list(report["datasets"])
    lines: list[str] = []
    if names:
        lines += [*_group_table(report, names), "",
                  "µs per row, one core, best of the runs; "
                  + "; ".join(f"{n}: {d['rows']:,} rows, {d['nnz_per_row']} non-zeros a row, "
                              "identical matrices: "
                              f"{d['equal_stepwise'] and d['equal_transform']}"
                              for n, d in report["datasets"].items())]
    m = report["machine"]
    lines += [f"CPU: {m['cpu_model']} ({m['cores_logical']} logical), load average at start "
              f"{m['load_average'][0]:.2f}, at end {m['load_average_end'][0]:.2f}; "
              f"Python {m['versions']['python']}, numba {m['versions']['numba']}, "
              f"scikit-learn {m['versions']['scikit-learn']}; "
              f"commit {m.get('git_commit', '?')[:10]}"
              + (" (with uncommitted changes)" if m.get("uncommitted_changes") else "")]
    if report.get("compile"):
        lines += ["", "| first transform in a fresh process | import s | char table s "
                  "| first call s | second call s |", "|---|---:|---:|---:|---:|"]
        for name, c in report["compile"].items():
            lines.append(f"| {name.replace('_', ' ')} | {c['import_s']:.2f} | "
                         f"{c['char_classes_s']:.2f} | {c['first_call_s']:.2f} | "
                         f"{c['second_call_s']:.4f} |")
    return "\n".join(lines) + "\n"


def _group_table(report: dict, names: list[str]) -> list[str]:
    head = "| group | " + " | ".join(
        f"{n} sklearn | {n} fast | ×" for n in names) + " |"
    lines = [head, "|---|" + "---:|---:|---:|" * len(names)]
    for group in GROUPS:
        cells = []
        for n in names:
            entry = report["datasets"][n]["groups"].get(group, {})
            fast = _cell(entry, "fast") if group != "word count" else "in char 4-grams"
            cells += [_cell(entry, "sklearn"), fast, _speedup(entry)]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    for label, sk, fa in (("sum of groups", "sklearn_sum_of_groups_us",
                           "fast_sum_of_groups_us"),
                          ("whole transform", "sklearn_us", "fast_us")):
        cells = []
        for n in names:
            whole = report["datasets"][n]["whole"]
            entry = {"sklearn_us": whole.get(sk), "fast_us": whole.get(fa)}
            cells += [_cell(entry, "sklearn"), _cell(entry, "fast"), _speedup(entry)]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=Path, default=SAMPLE,
                        help="real sample CSV (skipped when absent)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the compiled path (the best is reported)")
    parser.add_argument("--sklearn-repeat", type=int, default=1,
                        help="runs of the scikit-learn path")
    parser.add_argument("--whole-sklearn", action="store_true",
                        help="also time the scikit-learn transform whole on the synthetic "
                             "rows (the sample always is)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the fresh-process compile measurement")
    parser.add_argument("--only-compile", action="store_true",
                        help="measure the compile times alone (a run under a minute)")
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)

    report: dict = {"machine": machine(), "datasets": {}}
    if not args.no_compile:
        report["compile"] = compile_times()
    if args.only_compile:
        return _finish(report, args.out)
    # Load (or compile) the kernels and the character table before any timing; the
    # numeric scaling is learned on those rows (it does not change the timings).
    warm = (cleaned_from_csv(args.sample).iloc[:50] if args.sample.is_file()
            else synthetic(50, args.seed))
    spec = FeatureSpec().fit(warm)
    spec.transform(warm)
    del warm
    start = time.perf_counter()
    df = synthetic(args.rows, args.seed)
    report["synthetic_seconds_to_make"] = round(time.perf_counter() - start, 2)
    report["datasets"]["synthetic"] = measure(df, spec, args.repeat, args.sklearn_repeat,
                                              args.whole_sklearn)
    del df
    if args.sample.is_file():
        sample = cleaned_from_csv(args.sample)
        report["datasets"]["sample"] = measure(sample, spec, args.repeat,
                                               max(args.sklearn_repeat, 1), True)
    return _finish(report, args.out)


def _finish(report: dict, out: Path | None) -> int:
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(markdown(report))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    ok = all(d["equal_stepwise"] and d["equal_transform"]
             for d in report["datasets"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
