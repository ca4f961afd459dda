"""`wine-pipeline`: one subcommand per pipeline step, plus `run` for the whole DAG.

The command line is the contract: the local runner and the containers run
exactly these commands.  Step modules are imported inside each command, so
an image holds only what its step needs (download needs no Dask).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from pipeline import LOG_LEVEL_ENV, __version__, params

log = logging.getLogger("pipeline")

#: Errors that mean bad input or a missing prerequisite: reported in one line, exit 1.
_USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from pipeline.steps.download import DownloadError
    from pipeline.storage import StoreError

    extra: list[type[BaseException]] = [DownloadError, StoreError]
    with contextlib.suppress(ImportError):  # the download image has no Dask
        from pipeline.steps.make_dataset import TooManyRejects

        extra.append(TooManyRejects)
    return (*_USER_ERRORS, *extra)


def _os_error(err: OSError) -> str:
    """One line for an operating-system error: what failed, and on which file."""
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f)
    what = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        what = "no space left on the device; free some space or write elsewhere"
    elif err.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied; check who owns it (see WINE_UID in the README)"
    return f"{where}: {what}" if where else what


def friendly_errors(func: Callable) -> Callable:
    """Turn any failure into a one-line error and a non-zero exit.

    Bad input and missing prerequisites say what is wrong and with which file;
    an unexpected error says so in one line too, and its traceback is logged at
    ``--log-level DEBUG``.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as err:
            log.debug("the step failed", exc_info=True)
            from pipeline.storage import describe_store_error

            store_problem = describe_store_error(err)
            if store_problem is not None:
                message = store_problem
            elif isinstance(err, _user_errors()):
                message = str(err)
            elif isinstance(err, OSError):
                message = _os_error(err)
            elif isinstance(err, MemoryError):
                message = ("out of memory: give the step more memory, or the workers "
                           "(WINE_WORKER_MEMORY), or a smaller --blocksize")
            else:
                message = (f"unexpected {type(err).__name__}: {err} (a bug? rerun with "
                           "--log-level DEBUG for the traceback)")
            first, *rest = message.strip().splitlines() or [type(err).__name__]
            raise click.ClickException(first + (" ..." if rest else "")) from err

    return wrapper


scheduler_option = click.option(
    "--scheduler",
    envvar="DASK_SCHEDULER_ADDRESS",
    default=None,
    metavar="ADDRESS",
    help="Dask scheduler, e.g. tcp://scheduler:8786 (default: $DASK_SCHEDULER_ADDRESS; "
    "none: a LocalCluster sized to this machine).",
)


encoding_option = click.option(
    "--encoding", default="utf-8", show_default=True,
    help="Text encoding of the CSV (e.g. cp1252, latin-1, utf-16). Rows with bytes "
    "invalid in it are counted; past 1% the step fails and names one to try.")


@contextlib.contextmanager
def _client(scheduler: str | None) -> Iterator[None]:
    from pipeline.distributed.cluster import dask_client

    with dask_client(scheduler):
        yield


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 99})
@click.option("--log-level", default="INFO", show_default=True, envvar=LOG_LEVEL_ENV,
              show_envvar=True, metavar="[DEBUG|INFO|WARNING|ERROR]",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Least severe messages logged; `run` passes it on to every step.")
@click.version_option(package_name="wine-pipeline")
def cli(log_level: str) -> None:
    """Predict wine ratings (80-100 points) from reviews: a Dask batch pipeline.

    Steps, in order: download, make-dataset, train, evaluate; then predict scores new
    wines. `run` runs the whole DAG through luigi.
    """
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Says, in a step's log, which command ran at which level (and so that it got it).
    log.debug("wine-pipeline %s (pid %d, log level %s): %s", __version__, os.getpid(),
              log_level, shlex.join(sys.argv[1:]))


@cli.command()
@click.option("--source", required=True,
              help="http(s) URL, a local CSV path, or synthetic:N[:SEED].")
@click.option("--out-csv", required=True, type=click.Path(dir_okay=False),
              help="Where the raw CSV is written (atomically).")
@click.option("--timeout", default=30.0, show_default=True, help="Network timeout, seconds.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(min=0),
              help="Further attempts after a transient network error (with backoff).")
@click.option("--max-bytes", default=20 * 1024**3, show_default=True,
              type=click.IntRange(min=1), help="Refuse larger downloads.")
@click.option("--sha256", default=None, help="Expected SHA-256 of the data, hex.")
@click.option("--allow-http", is_flag=True, help="Accept plain http URLs (https only by default).")
@friendly_errors
def download(source: str, out_csv: str, timeout: float, retries: int, max_bytes: int,
             sha256: str | None, allow_http: bool) -> None:
    """Fetch the raw reviews CSV from SOURCE to OUT_CSV.

    Without network, give a local file or synthetic:N instead of a URL. The target
    only ever holds a complete file that passed the size and checksum checks.
    """
    from pipeline.steps.download import download as run

    run(source, out_csv, timeout=timeout, retries=retries, max_bytes=max_bytes,
        sha256=sha256, allow_http=allow_http)


@cli.command()
@click.option("--rows", required=True, type=click.IntRange(min=1), help="Rows to generate.")
@click.option("--seed", default=params.SEED, show_default=True, type=int, help="Random seed.")
@click.option("--out-csv", required=True, type=click.Path(dir_okay=False),
              help="Where the CSV is written (atomically).")
@friendly_errors
def generate(rows: int, seed: int, out_csv: str) -> None:
    """Generate synthetic reviews with the input schema (deterministic per seed).

    Rows are streamed in chunks, so ten million need little memory.
    """
    from synth import generate_csv

    generate_csv(rows=rows, seed=seed, out_csv=out_csv)


@cli.command("make-dataset")
@click.option("--in-csv", required=True, type=click.Path(dir_okay=False),
              help="Raw reviews CSV.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Data set directory: train/, valid/, test/, rejects/, stats.json, _SUCCESS.")
@click.option("--blocksize", default=params.BLOCKSIZE, show_default=True,
              help="CSV bytes per partition.")
@click.option("--max-reject-share", default=params.MAX_REJECT_SHARE, show_default=True,
              type=click.FloatRange(0, 1), help="Fail when more rows than this are unusable.")
@encoding_option
@scheduler_option
@friendly_errors
def make_dataset(in_csv: str, out_dir: str, blocksize: str, max_reject_share: float,
                 encoding: str, scheduler: str | None) -> None:
    """Clean the raw CSV and split it 80/10/10 into partitioned Parquet.

    The split is a hash of the review text, so duplicates share a split and a row's
    split never changes as the data grows. Unusable rows go to rejects/ with a reason.
    A compressed CSV (gzip, bzip2, xz, zip) is decompressed once beside OUT_DIR first.
    OUT_DIR is replaced only when it holds nothing but an earlier data set.
    """
    from pipeline.steps.make_dataset import make_dataset as run

    with _client(scheduler):
        run(in_csv, out_dir, blocksize=blocksize, max_reject_share=max_reject_share,
            encoding=encoding)


@cli.command()
@click.option("--dataset-dir", required=True, type=click.Path(file_okay=False),
              help="Output of make-dataset.")
@click.option("--out-model", required=True, type=click.Path(dir_okay=False),
              help="Model file (joblib), written atomically.")
@click.option("--seed", default=params.SEED, show_default=True, type=int, help="Random seed.")
@click.option("--model", "model_kind", default="auto", show_default=True,
              type=click.Choice(["auto", "sgd", "lightgbm"]),
              help="sgd: linear model on hashed features; lightgbm: LightGBM stacked on it; "
              "auto: fit both, keep the better on validation.")
@scheduler_option
@friendly_errors
def train(dataset_dir: str, out_model: str, seed: int, model_kind: str,
          scheduler: str | None) -> None:
    """Train the rating model on train/, validate on valid/, save one model file.

    Hashed text and category features are computed once on the workers and kept
    there (streamed in windows when they would not fit); SGD regressors (the whole
    split's and, for LightGBM, the cross-fitting folds') learn in the same passes
    over them. LightGBM (on the Dask cluster) is
    stacked on the out-of-fold text score. The kept model's 80% prediction interval
    comes from its validation residuals. Progress is logged every few seconds.
    """
    from pipeline.steps.train import train as run

    with _client(scheduler):
        run(dataset_dir, out_model, seed=seed, model_kind=model_kind)


@cli.command()
@click.option("--dataset-dir", required=True, type=click.Path(file_okay=False),
              help="Output of make-dataset.")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Output of train.")
@click.option("--out-report", required=True, type=click.Path(dir_okay=False),
              help="Self-contained HTML report, written atomically.")
@scheduler_option
@friendly_errors
def evaluate(dataset_dir: str, model_path: str, out_report: str, scheduler: str | None) -> None:
    """Score the test split against naive baselines and render the HTML report."""
    from pipeline.steps.evaluate import evaluate as run

    with _client(scheduler):
        run(dataset_dir, model_path, out_report)


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Output of train.")
@click.option("--input", "input_csv", required=True, type=click.Path(dir_okay=False),
              help="Wines to score (input schema; points may be absent).")
@click.option("--output", "output_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV of id, predicted_points, lower, upper (80% interval), "
              "reject_reason; written atomically.")
@click.option("--blocksize", default=params.BLOCKSIZE, show_default=True,
              help="CSV bytes per partition.")
@click.option("--sheet/--no-sheet", default=True, show_default=True,
              help="Also write the buyer's sheet, OUTPUT's name with .html: a self-contained "
              "page of the counts, the predicted points and the wines to look at first.")
@encoding_option
@scheduler_option
@friendly_errors
def predict(model_path: str, input_csv: str, output_csv: str, blocksize: str, sheet: bool,
            encoding: str, scheduler: str | None) -> None:
    """Predict the points of every wine in INPUT; unusable rows get a reason instead.

    One output row per input record, in input order. INPUT may be compressed (gzip,
    bzip2, xz, zip); OUTPUT is never the input, and replaces only an earlier output.
    The buyer's sheet beside it is written first and refused like OUTPUT.
    """
    from pipeline.steps.predict import predict as run

    with _client(scheduler):
        run(model_path, input_csv, output_csv, blocksize=blocksize, encoding=encoding,
            sheet=sheet)


@cli.command("cross-validate")
@click.option("--dataset-dir", required=True, type=click.Path(file_okay=False),
              help="Output of make-dataset; the labelled rows of all its splits are pooled.")
@click.option("--out-json", required=True, type=click.Path(dir_okay=False),
              help="Per-fold metrics and their summary, written atomically.")
@click.option("--folds", default=params.CV_FOLDS, show_default=True, type=click.IntRange(min=2),
              help="Folds of reviews; each labelled row is test data in exactly one.")
@click.option("--seed", default=params.SEED, show_default=True, type=int, help="Random seed.")
@click.option("--sgd-only", is_flag=True, help="Skip LightGBM (quicker).")
@scheduler_option
@friendly_errors
def cross_validate(dataset_dir: str, out_json: str, folds: int, seed: int, sgd_only: bool,
                   scheduler: str | None) -> None:
    """Estimate each model's MAE by k-fold cross-validation, with a 95% interval.

    Baselines (mean, price only), SGD and LightGBM are scored on the same folds of
    reviews; every labelled row is test data exactly once.
    """
    from pipeline.cross_validate import cross_validate as run

    models = ("sgd",) if sgd_only else ("sgd", "lightgbm")
    with _client(scheduler):
        report = run(dataset_dir, out_json, folds=folds, seed=seed, models=models)
    for model, entry in report["summary"].items():
        click.echo(f"{model:>11}: MAE {entry['mae_mean']:.3f} ± {entry['mae_ci95']:.3f}, "
                   f"R² {entry['r2_mean']:.3f} ± {entry['r2_ci95']:.3f}")


#: Inventory files a folder given to ``run --inventory`` contributes.
INVENTORY_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".zip")


def inventory_files(paths: tuple[str, ...]) -> list[str]:
    """The inventory files named by ``--inventory``: files as given, folders' CSVs sorted.

    Parameters
    ----------
    paths : tuple of str
        Files or folders.

    Returns
    -------
    list of str
        Absolute paths, or URLs.

    Raises
    ------
    click.BadParameter
        A path that does not exist, or a folder without any CSV.
    """
    from pipeline.storage import as_path, is_remote

    files: list[str] = []
    for given in paths:
        path = as_path(given) if is_remote(given) else Path(given).absolute()
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.name.lower().endswith(INVENTORY_SUFFIXES))
            if not found:
                raise click.BadParameter(f"{given}: a folder without any CSV "
                                         f"({', '.join(INVENTORY_SUFFIXES)})",
                                         param_hint="--inventory")
            files += [str(p) for p in found]
        elif path.is_file():
            files.append(str(path))
        else:
            raise click.BadParameter(f"{given}: no such file or folder",
                                     param_hint="--inventory")
    return list(dict.fromkeys(files))


def _log_level() -> str:
    """The level ``--log-level`` (or ``$WINE_LOG_LEVEL``) set for this command."""
    return click.get_current_context().find_root().params["log_level"]


@cli.command()
@click.option("--source", default=None,
              help="http(s) URL, local CSV path or synthetic:N[:SEED] "
              "(default: the challenge sample's address).")
@click.option("--data-root", default="data_root", show_default=True,
              type=click.Path(file_okay=False),
              help="Directory of every output: a local folder, or an object-store URL "
              "(s3://bucket/prefix; endpoint and keys from AWS_ENDPOINT_URL, "
              "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).")
@click.option("--runner", default="local", show_default=True,
              type=click.Choice(["local", "docker"]),
              help="local: each step a subprocess; docker: each step its own container.")
@click.option("--luigi-url", default=None, envvar="LUIGI_URL",
              help="Central luigid scheduler, e.g. http://luigid:8082 (default: in-process).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="luigi workers (tasks run at once).")
@click.option("--inventory", "inventories", multiple=True,
              help="CSV of wines to score with the trained model, or a folder of them "
              "(repeatable); predictions go to DATA_ROOT/predictions/.")
@scheduler_option
@friendly_errors
def run(source: str | None, data_root: str, runner: str, luigi_url: str | None, workers: int,
        inventories: tuple[str, ...], scheduler: str | None) -> None:
    """Run the whole DAG (download, make-dataset, train, evaluate) through luigi.

    With --inventory, each inventory file is scored by the trained model too. Complete
    outputs are not redone, so a second identical run does nothing. With the local
    runner and no scheduler, one LocalCluster serves every step. Every step logs at
    this command's --log-level.
    """
    from pipeline.orchestration.tasks import run_pipeline
    from pipeline.steps.download import DEFAULT_SOURCE
    from pipeline.storage import check_root, is_remote

    source = source or DEFAULT_SOURCE
    remote_root = is_remote(data_root)
    if remote_root:
        check_root(data_root)
    else:
        data_root = os.path.abspath(data_root)
    files = inventory_files(inventories)
    outside = [f for f in files if runner == "docker" and not is_remote(f)
               and (remote_root or not Path(f).is_relative_to(data_root))]
    if outside:
        # Step containers see only the data root (mounted where this process sees it), or
        # the object store.
        where = "the object store" if remote_root else f"the data root {data_root}"
        raise click.BadParameter(f"{outside[0]} is outside {where}, which is all a step "
                                 "container sees: put it there", param_hint="--inventory")
    with contextlib.ExitStack() as stack:
        if runner == "local" and not scheduler:
            from pipeline.distributed.cluster import local_cluster

            cluster = stack.enter_context(local_cluster())
            scheduler = cluster.scheduler_address
            log.info("LocalCluster for this run: %s (dashboard %s)", scheduler,
                     cluster.dashboard_link)
        ok, final, predictions = run_pipeline(source, data_root, runner=runner,
                                              scheduler=scheduler, luigi_url=luigi_url,
                                              workers=workers, inventories=files,
                                              log_level=_log_level())
    if not ok:
        raise click.ClickException("the pipeline failed; see the log above")
    model = final.requires()["model"].output().path
    click.echo(f"model:  {model}")
    click.echo(f"report: {final.output().path}")
    for task in predictions:
        click.echo(f"predictions: {task.output().path} (of {task.inventory})")
        click.echo(f"sheet:       {task.sheet}")


def main() -> None:
    """Entry point of the ``wine-pipeline`` console script."""
    cli(prog_name="wine-pipeline")


if __name__ == "__main__":
    main()
