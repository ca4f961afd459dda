"""make-dataset: raw CSV -> cleaned, split, partitioned Parquet (train/, valid/, test/).

Each partition is read, cleaned, split and written by a worker; only row
counts come back to the client.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from pipeline.atomic import atomic_dir, check_not_input, check_replaceable, scratch_dir
from pipeline.cleaning import REASON, clean_partition
from pipeline.csv_input import DEFAULT_BLOCKSIZE, DEFAULT_ENCODING, UNDECODABLE, check_undecodable
from pipeline.dataset import STATS_FILE, TRAIN_STATS_FILE
from pipeline.distributed.cluster import Client, compute_per_block, current_client
from pipeline.distributed.csv_blocks import read_csv_blocks
from pipeline.features import partition_stats
from pipeline.params import MAX_REJECT_SHARE
from pipeline.progress import StepProgress
from pipeline.schema import REJECTS, REQUIRED_FOR_TRAINING
from pipeline.splitting import SPLITS, split_of
from pipeline.storage import as_path, url_of
from pipeline.textfiles import prepare_input

log = logging.getLogger(__name__)


class TooManyRejects(RuntimeError):
    """More rows were unusable than the allowed share."""


def write_partition(
    raw: pd.DataFrame, number: int, out_dir: str
) -> tuple[dict[str, int], str, dict]:
    """Clean one raw partition and write its pieces of every split and its rejects.

    Every piece is written even when empty, so every split directory exists and
    carries the schema.

    Parameters
    ----------
    raw : pandas.DataFrame
        A partition of the CSV, all strings.
    number : int
        Partition number, used in file names so outputs are ordered and stable.
    out_dir : str
        Directory holding one sub-directory per split.

    Returns
    -------
    counts : dict
        Row counts: ``input``, each split, ``rejected`` plus one ``reason:...`` per
        reason, and ``undecodable`` (rows that held bytes invalid in the encoding).
    name : str
        File name of the pieces, the same in every split directory.
    train_stats : dict
        :func:`pipeline.features.partition_stats` of the training piece, in JSON types
        (:meth:`pipeline.features.PartitionStats.to_json`).
    """
    clean, rejects = clean_partition(raw, require_points=True)
    split = split_of(clean["description"])
    counts = {"input": len(raw), "rejected": len(rejects),
              "undecodable": int(raw[UNDECODABLE].sum()) if UNDECODABLE in raw else 0}
    name = f"part.{number:05d}.parquet"
    pieces = {s: clean[split == s] for s in SPLITS}
    for s, piece in pieces.items():
        piece.to_parquet(url_of(as_path(out_dir) / s / name), index=False)
        counts[s] = len(piece)
    rejects.to_parquet(url_of(as_path(out_dir) / REJECTS / name), index=False)
    # Counted by kind: a malformed line's reason quotes the line, which the rejects keep.
    for reason, n in rejects[REASON].str.split(": ", n=1).str[0].value_counts().items():
        counts[f"reason:{reason}"] = int(n)
    return counts, name, partition_stats(pieces["train"]).to_json()


def make_dataset(
    in_csv: str | Path,
    out_dir: str | Path,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
    max_reject_share: float = MAX_REJECT_SHARE,
    encoding: str = DEFAULT_ENCODING,
) -> dict[str, int]:
    """Build the data set directory from a raw CSV.

    Parameters
    ----------
    in_csv : str or pathlib.Path
        Raw reviews: CSV, possibly compressed (gzip, bzip2, xz, zip).
    out_dir : str or pathlib.Path
        Output directory: ``train/``, ``valid/``, ``test/``, ``rejects/``,
        ``stats.json``, ``train_stats.json`` and ``_SUCCESS``; replaced atomically,
        and only when it holds nothing but an earlier data set.
    blocksize : str or int
        CSV bytes per partition.
    max_reject_share : float, default :data:`pipeline.params.MAX_REJECT_SHARE`
        Fail when a larger share of the rows is unusable.
    encoding : str, default "utf-8"
        Text encoding of the CSV.

    Returns
    -------
    dict
        Row counts (see :func:`write_partition`), summed over partitions.

    Raises
    ------
    pipeline.schema.SchemaError
        When the CSV lacks a required column or cannot be read.
    TooManyRejects
        When the rejected share exceeds ``max_reject_share``.
    pipeline.atomic.NotOurs
        When ``out_dir`` holds files this program did not write, or the input.
    pipeline.csv_input.EncodingProblem
        When too many rows are not valid in ``encoding``.
    """
    check_not_input(out_dir, in_csv)
    check_replaceable(out_dir, directory=True)
    progress = StepProgress("make-dataset", {"scanning": 0.15, "writing": 0.85})
    with scratch_dir(out_dir) as scratch:
        path, encoding = prepare_input(in_csv, encoding, scratch)
        client = current_client()
        parts = read_csv_blocks(client, path, REQUIRED_FOR_TRAINING,
                                blocksize=blocksize, encoding=encoding, progress=progress)
        log.info("reading %s in %d partitions", in_csv, len(parts))
        return _write_dataset(client, parts, out_dir, max_reject_share,
                              (path, encoding, in_csv), progress)


def _write_dataset(client: Client, parts: list, out_dir: str | Path, max_reject_share: float,
                   source: tuple[str, str, str | Path],
                   progress: StepProgress) -> dict[str, int]:
    path, encoding, in_csv = source
    with atomic_dir(out_dir) as tmp:
        for sub in (*SPLITS, REJECTS):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        totals: dict[str, int] = {}
        train_stats: dict[str, dict] = {}
        results = compute_per_block(client, write_partition, parts,
                                    [(i, str(tmp)) for i in range(len(parts))],
                                    name="clean-split-write", progress=progress,
                                    phase="writing", detail="partitions")
        for counts, name, stats in results:
            for key, n in counts.items():
                totals[key] = totals.get(key, 0) + n
            train_stats[name] = stats
        check_undecodable(path, encoding, totals["undecodable"], totals["input"], in_csv)
        kept = sum(totals.get(s, 0) for s in SPLITS)
        if kept + totals["rejected"] != totals["input"]:
            raise AssertionError(f"row accounting broken: {totals}")
        share = totals["rejected"] / max(totals["input"], 1)
        if share > max_reject_share:
            reasons = {k: v for k, v in totals.items() if k.startswith("reason:")}
            raise TooManyRejects(
                f"{share:.1%} of {totals['input']} rows were unusable "
                f"(allowed {max_reject_share:.1%}): {reasons}"
            )
        (tmp / STATS_FILE).write_text(json.dumps({**totals, "encoding": encoding}, indent=2,
                                                 sort_keys=True))
        (tmp / TRAIN_STATS_FILE).write_text(json.dumps({"partitions": train_stats}))
    log.info("data set written to %s: %s", out_dir, totals)
    return totals
