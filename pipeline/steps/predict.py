"""predict: score any CSV of the input schema (points optional, categories may be unseen).

Workers clean and score their partitions and write them as CSV pieces; the
client joins the pieces in order into one file, so input order is kept and
no partition's rows pass through the client's memory at once.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import dask
import numpy as np
import pandas as pd
from distributed import default_client

from pipeline.atomic import atomic_file, check_not_input, check_replaceable, scratch_dir
from pipeline.cleaning import REASON, clean_partition, id_column_of
from pipeline.cluster import compute_tracked, worker_count
from pipeline.csv_input import (
    DEFAULT_BLOCKSIZE,
    DEFAULT_ENCODING,
    UNDECODABLE,
    check_undecodable,
    read_csv_blocks,
)
from pipeline.model import WineModel, load_model
from pipeline.progress import StepProgress
from pipeline.schema import ID_COLUMN, REQUIRED_FOR_SCORING
from pipeline.textfiles import prepare_input

log = logging.getLogger(__name__)

#: Columns of the predictions file.
OUTPUT_COLUMNS = (ID_COLUMN, "predicted_points", "lower", "upper", REASON)


def score_partition(raw: pd.DataFrame, model: WineModel) -> pd.DataFrame:
    """Predictions for one partition of raw rows, in input order.

    Parameters
    ----------
    raw : pandas.DataFrame
        Rows as read, all strings, indexed by record number (see
        :func:`pipeline.csv_input.parse_block`).
    model : WineModel

    Returns
    -------
    pandas.DataFrame
        ``id`` (the file's index column as written, else the record number),
        ``predicted_points`` with its 80% interval ``lower`` and ``upper`` (all empty
        for unusable rows) and ``reject_reason``.
    """
    clean, rejects = clean_partition(raw, require_points=False)
    id_col = id_column_of(list(raw.columns))
    ids = (raw[id_col].astype("object") if id_col is not None
           else pd.Series(raw.index.to_numpy(), index=raw.index))
    out = pd.DataFrame({ID_COLUMN: ids, "predicted_points": np.nan, "lower": np.nan,
                        "upper": np.nan, REASON: ""}, index=raw.index)
    scored = model.predict_interval(clean).round(3)
    out.loc[clean.index, scored.columns] = scored
    out.loc[rejects.index, REASON] = rejects[REASON].astype("object")
    return out


def _write_piece(raw: pd.DataFrame, model: WineModel, path: str) -> tuple[int, int, int]:
    scored = score_partition(raw, model)
    scored.to_csv(path, index=False, header=False)
    bad = int(raw[UNDECODABLE].sum()) if UNDECODABLE in raw else 0
    return len(scored), int((scored[REASON] != "").sum()), bad


def predict(
    model_path: str | Path,
    input_csv: str | Path,
    output_csv: str | Path,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    encoding: str = DEFAULT_ENCODING,
) -> dict[str, int]:
    """Score ``input_csv`` with the model and write ``output_csv`` atomically.

    Needs a connected Dask client (see :func:`pipeline.cluster.dask_client`).

    Parameters
    ----------
    model_path : str or pathlib.Path
        Output of train.
    input_csv : str or pathlib.Path
        Wines to score, with the input schema; ``points`` may be absent.  CSV,
        possibly compressed (gzip, bzip2, xz, zip).
    output_csv : str or pathlib.Path
        ``id``, ``predicted_points``, ``lower``, ``upper``, ``reject_reason``, one
        line per input record, in input order.  Never the input itself.
    blocksize : str or int
        CSV bytes per partition.
    encoding : str, default "utf-8"
        Text encoding of the input.

    Returns
    -------
    dict
        ``rows`` scored and ``rejected`` rows (those with an empty prediction).
    """
    out = Path(output_csv)
    check_not_input(out, input_csv, model_path)
    check_replaceable(out, directory=False)
    model = load_model(model_path)
    client = default_client()
    progress = StepProgress("predict", {"scanning": 0.1, "scoring": 0.85, "joining": 0.05})
    with scratch_dir(out) as scratch:
        path, encoding = prepare_input(input_csv, encoding, scratch)
        parts = read_csv_blocks(path, REQUIRED_FOR_SCORING, blocksize=blocksize,
                                workers=worker_count(client), encoding=encoding,
                                progress=progress)
        [model_future] = client.scatter([model], broadcast=True)
        pieces = [str(scratch / f"part.{i:05d}.csv") for i in range(len(parts))]
        token = uuid.uuid4().hex[:8]
        counts = compute_tracked(client, [
            dask.delayed(_write_piece)(part, model_future, piece,
                                       dask_key_name=f"score-inventory-block-{token}-{i}")
            for i, (part, piece) in enumerate(zip(parts, pieces, strict=True))
        ], progress, "scoring", "blocks")
        rows = sum(c[0] for c in counts)
        check_undecodable(path, encoding, sum(c[2] for c in counts), rows, input_csv)
        with atomic_file(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(OUTPUT_COLUMNS) + "\n")
            for i, piece in enumerate(pieces):
                with open(piece, encoding="utf-8", newline="") as src:
                    shutil.copyfileobj(src, fh)
                progress.update("joining", i + 1, len(pieces), "pieces")
    result = {"rows": rows, "rejected": sum(c[1] for c in counts)}
    log.info("predictions written to %s: %s", out, result)
    return result
