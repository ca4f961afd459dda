"""predict: score any CSV of the input schema (points optional, categories may be unseen).

Workers clean and score their partitions and write them as CSV pieces; the
client joins the pieces in order into one file, so input order is kept and
no partition's rows pass through the client's memory at once.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dask
import numpy as np
import pandas as pd
from distributed import default_client

from pipeline.atomic import atomic_file, scratch_dir
from pipeline.cleaning import REASON, clean_partition, id_column_of
from pipeline.cluster import worker_count
from pipeline.csv_input import DEFAULT_BLOCKSIZE, read_csv_blocks, read_header
from pipeline.model import WineModel, load_model
from pipeline.schema import ID_COLUMN, REQUIRED_FOR_SCORING

log = logging.getLogger(__name__)

#: Columns of the predictions file.
OUTPUT_COLUMNS = (ID_COLUMN, "predicted_points", "lower", "upper", REASON)


def score_partition(raw: pd.DataFrame, model: WineModel, first_id: int = 0) -> pd.DataFrame:
    """Predictions for one partition of raw rows, in input order.

    Parameters
    ----------
    raw : pandas.DataFrame
        Rows as read, all strings.
    model : WineModel
    first_id : int, default 0
        Id of the first row when the file has no index column.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``predicted_points`` with its 80% interval ``lower`` and ``upper``
        (all empty for unusable rows) and ``reject_reason``.
    """
    clean, rejects = clean_partition(raw, require_points=False, first_id=first_id)
    id_col = id_column_of(list(raw.columns))
    ids = (raw[id_col].astype("object") if id_col is not None
           else pd.Series(np.arange(first_id, first_id + len(raw)), index=raw.index))
    out = pd.DataFrame({ID_COLUMN: ids, "predicted_points": np.nan, "lower": np.nan,
                        "upper": np.nan, REASON: ""}, index=raw.index)
    scored = model.predict_interval(clean).round(3)
    out.loc[clean.index, scored.columns] = scored
    out.loc[rejects.index, REASON] = rejects[REASON].astype("object")
    return out


def _write_piece(
    raw: pd.DataFrame, model: WineModel, first_id: int, path: str
) -> tuple[int, int]:
    scored = score_partition(raw, model, first_id)
    scored.to_csv(path, index=False, header=False)
    return len(scored), int((scored[REASON] != "").sum())


def predict(
    model_path: str | Path,
    input_csv: str | Path,
    output_csv: str | Path,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
) -> dict[str, int]:
    """Score ``input_csv`` with the model and write ``output_csv`` atomically.

    Needs a connected Dask client (see :func:`pipeline.cluster.dask_client`).

    Parameters
    ----------
    model_path : str or pathlib.Path
        Output of train.
    input_csv : str or pathlib.Path
        Wines to score, with the input schema; ``points`` may be absent.
    output_csv : str or pathlib.Path
        ``id``, ``predicted_points``, ``lower``, ``upper``, ``reject_reason``, one
        line per input row.
    blocksize : str or int
        CSV bytes per partition.

    Returns
    -------
    dict
        ``rows`` scored and ``rejected`` rows (those with an empty prediction).
    """
    model = load_model(model_path)
    parts = read_csv_blocks(input_csv, REQUIRED_FOR_SCORING, blocksize=blocksize,
                            workers=worker_count(default_client()))
    if id_column_of(read_header(input_csv)) is None:
        lengths = dask.compute(*[dask.delayed(len)(p) for p in parts])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    else:
        starts = [0] * len(parts)
    client = default_client()
    [model_future] = client.scatter([model], broadcast=True)
    out = Path(output_csv)
    with scratch_dir(out) as pieces_dir:
        pieces = [str(pieces_dir / f"part.{i:05d}.csv") for i in range(len(parts))]
        counts = dask.compute(*[
            dask.delayed(_write_piece)(part, model_future, start, piece)
            for part, start, piece in zip(parts, starts, pieces, strict=True)
        ])
        with atomic_file(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(OUTPUT_COLUMNS) + "\n")
            for piece in pieces:
                with open(piece, encoding="utf-8", newline="") as src:
                    shutil.copyfileobj(src, fh)
    result = {"rows": sum(c[0] for c in counts), "rejected": sum(c[1] for c in counts)}
    log.info("predictions written to %s: %s", out, result)
    return result
