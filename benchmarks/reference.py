"""The single-process reference: the same work as the pipeline, the way one writes it without Dask.

pandas reads the whole CSV, the pipeline's own cleaning and hash split run on
the whole frame, the same :class:`pipeline.features.FeatureSpec` hashes the
whole training split in one call, and the same ``SGDRegressor`` (same
``SGD_PARAMS``, same seed, same number of epochs as the pipeline would use on
this many training rows) is fitted with ``fit(max_iter=epochs, tol=None)``:
``epochs`` shuffled passes over all training rows, the same number of row
updates as the pipeline's ``partial_fit`` passes over its shuffled blocks.
Predictions are clipped and scored on the test split exactly as the pipeline's
evaluate step does.

Run as ``python -m benchmarks.reference --csv FILE --out result.json`` in its own
process, so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

import pandas as pd  # noqa: E402
from sklearn.linear_model import SGDRegressor  # noqa: E402

from benchmarks.common import code_fingerprint  # noqa: E402
from pipeline.cleaning import clean_partition  # noqa: E402
from pipeline.features import FeatureSpec  # noqa: E402
from pipeline.metrics import regression_metrics  # noqa: E402
from pipeline.model import SgdModel, n_epochs  # noqa: E402
from pipeline.params import SGD_PARAMS  # noqa: E402
from pipeline.schema import TARGET  # noqa: E402
from pipeline.splitting import split_of  # noqa: E402

T_IMPORTED = time.perf_counter()


def run_reference(csv: Path, seed: int = 0, epochs: int | None = None) -> dict:
    """Read, clean, split, hash, fit and score ``csv`` in this process.

    Returns
    -------
    dict
        Seconds per stage, rows, test metrics.
    """
    stages: dict[str, float] = {}
    started = time.time()
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages[name] = round(now - t, 3)
        t = now

    # Strings everywhere, as the pipeline reads them: typing is clean_partition's job.
    raw = pd.read_csv(csv, dtype="object", keep_default_na=False, na_values=[""],
                      encoding="utf-8", encoding_errors="replace")
    lap("read_csv")
    clean, rejects = clean_partition(raw, require_points=True)
    n_input, n_rejected = len(raw), len(rejects)
    del raw, rejects
    lap("clean")
    split = split_of(clean["description"])
    train = clean[split == "train"]
    valid_rows = int((split == "valid").sum())
    test = clean[split == "test"]
    del clean, split
    lap("split")

    spec = FeatureSpec().fit(train)
    y = train[TARGET].to_numpy(dtype="float64")
    y_mean = float(y.mean())
    x = spec.transform(train)
    lap("features")

    passes = epochs or n_epochs(len(train))
    sgd = SGDRegressor(random_state=seed, max_iter=passes, tol=None, shuffle=True, **SGD_PARAMS)
    sgd.fit(x, y - y_mean)
    lap("fit")
    x_nnz = int(x.nnz)
    x_mb = (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 2**20
    del x

    model = SgdModel(spec=spec, seed=seed, epochs=passes, estimator_=sgd, target_mean_=y_mean)
    y_test = test[TARGET].to_numpy(dtype="float64")
    test_metrics = regression_metrics(y_test, model.predict(test))
    lap("score_test")

    return {
        "rows": n_input,
        "rejected": n_rejected,
        "train_rows": len(train),
        "valid_rows": valid_rows,
        "test_rows": len(test),
        "epochs": passes,
        "sgd": "SGDRegressor(**SGD_PARAMS).fit(X, y, max_iter=epochs, tol=None, shuffle=True)",
        "sgd_params": SGD_PARAMS,
        "code": code_fingerprint(),
        "feature_nnz": x_nnz,
        "feature_matrix_mb": round(x_mb, 1),
        "stages": stages,
        "seconds": round(sum(stages.values()), 3),
        "start": started,
        "stop": time.time(),
        "import_seconds": round(T_IMPORTED - T_START, 3),
        "test_metrics": test_metrics,
        "mae": test_metrics["mae"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training rows (default: the pipeline's n_epochs)")
    args = parser.parse_args(argv)
    result = run_reference(args.csv, seed=args.seed, epochs=args.epochs)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
