"""predict: score any CSV of the input schema (points optional, categories may be unseen).

Workers clean and score their partitions and write them as CSV pieces; the
client joins the pieces in order into one file, so input order is kept and
no partition's rows pass through the client's memory at once.

Beside the CSV goes the buyer's sheet (same name, ``.html``): each partition also
returns a small summary of its wines (:mod:`pipeline.sheet_summary`), the client
merges them and renders the page (:mod:`pipeline.report.sheet`).  The sheet is
written before the CSV, so a complete CSV always has its sheet beside it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.atomic import (
    NotOurs,
    atomic_file,
    check_not_input,
    check_replaceable,
    marker_path,
    scratch_dir,
)
from pipeline.cleaning import REASON, clean_partition, id_column_of
from pipeline.csv_input import DEFAULT_BLOCKSIZE, DEFAULT_ENCODING, UNDECODABLE, check_undecodable
from pipeline.distributed.cluster import broadcast, compute_per_block, current_client
from pipeline.distributed.csv_blocks import read_csv_blocks
from pipeline.model import WineModel
from pipeline.model_file import load_model
from pipeline.params import INTERVAL_COVERAGE
from pipeline.progress import StepProgress
from pipeline.schema import ID_COLUMN, REQUIRED_FOR_SCORING
from pipeline.sheet_summary import SHOWN_COLUMNS, SheetSummary, merge_summaries, summarize
from pipeline.storage import as_path, same_place
from pipeline.textfiles import prepare_input

log = logging.getLogger(__name__)

#: Columns of the predictions file.
OUTPUT_COLUMNS = (ID_COLUMN, "predicted_points", "lower", "upper", REASON)


def sheet_path(output_csv: str | Path) -> Path:
    """Where the buyer's sheet of a predictions file goes: its name with ``.html``.

    Parameters
    ----------
    output_csv : str or pathlib.Path

    Returns
    -------
    pathlib.Path
        E.g. ``inventory-1a2b3c4d.html`` beside ``inventory-1a2b3c4d.csv``.
    """
    return as_path(output_csv).with_suffix(".html")


def _check_sheet(sheet: Path, out: Path, *inputs: str | Path) -> None:
    """The refusals of the CSV, for the sheet too, before any work is done."""
    if same_place(sheet, out):
        raise NotOurs(f"refusing to write {out}: the buyer's sheet beside it would have the "
                      "same name; give the output a .csv name, or pass --no-sheet")
    check_not_input(sheet, *inputs)
    check_replaceable(sheet, directory=False)
    try:
        import pipeline.report.sheet  # noqa: F401
    except ImportError as err:
        raise ValueError(f"the buyer's sheet {sheet} needs matplotlib and seaborn ({err}): "
                         "pip install 'wine-pipeline[sheet]', or pass --no-sheet") from err


def _score(raw: pd.DataFrame, model: WineModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions of one partition (see :func:`score_partition`) and its clean rows."""
    clean, rejects = clean_partition(raw, require_points=False)
    id_col = id_column_of(list(raw.columns))
    ids = (raw[id_col].astype("object") if id_col is not None
           else pd.Series(raw.index.to_numpy(), index=raw.index))
    out = pd.DataFrame({ID_COLUMN: ids, "predicted_points": np.nan, "lower": np.nan,
                        "upper": np.nan, REASON: ""}, index=raw.index)
    scored = model.predict_interval(clean).round(3)
    out.loc[clean.index, scored.columns] = scored
    out.loc[rejects.index, REASON] = rejects[REASON].astype("object")
    return out, clean


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
    return _score(raw, model)[0]


def _write_piece(raw: pd.DataFrame, model: WineModel,
                 path: str) -> tuple[int, int, int, SheetSummary]:
    scored, clean = _score(raw, model)
    scored.to_csv(path, index=False, header=False)
    bad = int(raw[UNDECODABLE].sum()) if UNDECODABLE in raw else 0
    summary = summarize(scored.join(clean[list(SHOWN_COLUMNS)]))
    return len(scored), int((scored[REASON] != "").sum()), bad, summary


def _write_sheet(summary: SheetSummary, sheet: Path, input_csv: str | Path,
                 model_path: str | Path, model: WineModel) -> None:
    from pipeline.report.sheet import render_sheet

    interval = model.metadata.get("interval") or {}
    render_sheet(summary, sheet, {
        "inventory": as_path(input_csv).name, "model": as_path(model_path).name,
        "version": __version__, "kind": model.kind,
        "trained_at": model.metadata.get("trained_at"),
        "coverage": interval.get("coverage", INTERVAL_COVERAGE),
    })
    log.info("buyer's sheet written to %s", sheet)


def _drop_old_sheet(sheet: Path) -> None:
    """Remove an earlier sheet of ours beside the CSV: it would describe other predictions."""
    if sheet.is_file() and marker_path(sheet).is_file():
        sheet.unlink()
        marker_path(sheet).unlink(missing_ok=True)
        log.info("removed the earlier buyer's sheet %s (--no-sheet)", sheet)


def predict(
    model_path: str | Path,
    input_csv: str | Path,
    output_csv: str | Path,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    encoding: str = DEFAULT_ENCODING,
    sheet: bool = True,
) -> dict[str, int]:
    """Score ``input_csv`` with the model and write ``output_csv`` atomically, and its sheet.

    Needs a connected Dask client (see :func:`pipeline.distributed.cluster.dask_client`).

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
    sheet : bool, default True
        Also write the buyer's sheet (:func:`sheet_path`), before the CSV; it is
        refused like the CSV (never a file wine-pipeline did not write, never the
        input).  False removes an earlier sheet of ours instead.

    Returns
    -------
    dict
        ``rows`` scored and ``rejected`` rows (those with an empty prediction).
    """
    out = as_path(output_csv)
    check_not_input(out, input_csv, model_path)
    check_replaceable(out, directory=False)
    page = sheet_path(out)
    if sheet:
        _check_sheet(page, out, input_csv, model_path)
    model = load_model(model_path)
    client = current_client()
    progress = StepProgress("predict", {"scanning": 0.1, "scoring": 0.82, "sheet": 0.03,
                                        "joining": 0.05})
    with scratch_dir(out) as scratch:
        path, encoding = prepare_input(input_csv, encoding, scratch)
        parts = read_csv_blocks(client, path, REQUIRED_FOR_SCORING, blocksize=blocksize,
                                encoding=encoding, progress=progress)
        model_future = broadcast(client, model)
        pieces = [str(scratch / f"part.{i:05d}.csv") for i in range(len(parts))]
        counts = compute_per_block(client, _write_piece, parts,
                                   [(model_future, piece) for piece in pieces],
                                   name="score-inventory-block", progress=progress,
                                   phase="scoring", detail="blocks")
        rows = sum(c[0] for c in counts)
        check_undecodable(path, encoding, sum(c[2] for c in counts), rows, input_csv)
        if sheet:
            _write_sheet(merge_summaries(c[3] for c in counts), page, input_csv, model_path,
                         model)
        elif not same_place(page, out):
            _drop_old_sheet(page)
        progress.update("sheet", 1, 1, "sheet")
        with atomic_file(out) as tmp, tmp.open("wb") as fh:
            fh.write((",".join(OUTPUT_COLUMNS) + "\n").encode("utf-8"))
            for i, piece in enumerate(pieces):
                with as_path(piece).open("rb") as src:
                    shutil.copyfileobj(src, fh, 1 << 20)
                progress.update("joining", i + 1, len(pieces), "pieces")
    result = {"rows": rows, "rejected": sum(c[1] for c in counts)}
    log.info("predictions written to %s: %s", out, result)
    return result
