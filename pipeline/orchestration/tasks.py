"""The luigi DAG: download -> make-dataset -> train -> evaluate, and predict per inventory.

A task only builds its step's command line, hands it to the runner chosen by
the ``runner`` parameter, and checks its single output.  Every output lives
under ``<data-root>/<stage>/<run key>/``, the key naming the source, so a new
source never reuses another's results and an identical rerun finds every
target complete and does nothing.  Predictions are named after the inventory file
and a hash of its bytes, so a changed inventory is scored again.  The data root
may be a local folder or an object-store URL (:mod:`pipeline.storage`); the
targets look there the same way.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import luigi

from pipeline import LOG_LEVEL_ENV
from pipeline.atomic import SUCCESS_FLAG, is_complete_dir
from pipeline.orchestration.runners import make_runner
from pipeline.progress import parse_line
from pipeline.storage import as_path


def run_key(source: str) -> str:
    """A readable, unique folder name for a data source.

    Parameters
    ----------
    source : str
        As given to ``download``.

    Returns
    -------
    str
        E.g. ``wine_reviews_sample-1a2b3c4d``.
    """
    stem = re.sub(r"\.csv$", "", source.rstrip("/").split("/")[-1])
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:40] or "source"
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def inventory_key(path: str | Path) -> str:
    """A readable, content-addressed file name for the predictions of an inventory.

    Parameters
    ----------
    path : str or pathlib.Path
        The inventory file.

    Returns
    -------
    str
        E.g. ``inventory-1a2b3c4d.csv``: the file's stem and the start of the
        SHA-256 of its bytes.
    """
    digest = hashlib.sha256()
    with as_path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    stem = as_path(path).name.split(".")[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:40] or "inventory"
    return f"{stem}-{digest.hexdigest()[:8]}.csv"


class OutputTarget(luigi.Target):
    """A file output under the data root, local or on an object store.

    It exists once written whole: outputs are renamed into place locally and
    uploaded in one request to a store (see :mod:`pipeline.atomic`).

    Parameters
    ----------
    path : str
        Local path or URL.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def exists(self) -> bool:  # noqa: D102
        return as_path(self.path).is_file()


class DirectoryTarget(OutputTarget):
    """The ``_SUCCESS`` marker of a directory output: there, and written by this program."""

    def exists(self) -> bool:  # noqa: D102
        return is_complete_dir(as_path(self.path).parent)


class StepTask(luigi.Task):
    """A pipeline step run through a runner; subclasses say which step and arguments."""

    source = luigi.Parameter(description="http(s) URL, local path or synthetic:N[:SEED]")
    data_root = luigi.Parameter(description="Directory under which every output is written")
    runner = luigi.ChoiceParameter(
        choices=["local", "docker"], default="local", significant=False,
        description="Where steps run: local subprocesses or one container per step",
    )
    scheduler = luigi.OptionalParameter(
        default=None, significant=False, description="Dask scheduler address for the steps"
    )
    log_level = luigi.OptionalParameter(
        default=None, significant=False,
        description="--log-level of every step, given as WINE_LOG_LEVEL (default: the step's)",
    )

    #: Subcommand of ``wine-pipeline``.
    step: str = ""

    # Containers and crashed workers are the usual cause of a failure here; one retry
    # covers a lost worker without hiding a real bug.  luigi counts failures, and
    # disables a task when they reach retry_count, so 2 means one retry.
    retry_count = 2

    def path(self, stage: str, name: str) -> str:
        """Where this run keeps ``name`` of ``stage`` (a path or URL)."""
        return str(as_path(self.data_root) / stage / run_key(self.source) / name)

    def arguments(self) -> list[str]:
        """The step's arguments (without ``--scheduler``)."""
        raise NotImplementedError

    def report(self, line: str) -> None:
        """Show a line of the step's log as luigi's status, and its progress as the bar."""
        self.set_status_message(line)
        percent = parse_line(line)
        if percent is not None:
            self.set_progress_percentage(percent)

    def run(self) -> None:
        """Start the step through the runner and check that it produced its output."""
        args = self.arguments()
        if self.scheduler and self.step != "download":
            args += ["--scheduler", self.scheduler]
        # In the step's environment, not its arguments: the level is the CLI's, not the step's.
        env = {LOG_LEVEL_ENV: self.log_level} if self.log_level else {}
        make_runner(self.runner, env=env).run(self.step, args, self.task_id, self.report)
        if not self.complete():
            raise RuntimeError(f"{self.step} finished but its output {self.output().path} "
                               "is missing")


class Download(StepTask):
    """Fetch the raw CSV."""

    step = "download"

    def output(self):  # noqa: D102
        return OutputTarget(self.path("raw", "reviews.csv"))

    def arguments(self):  # noqa: D102
        return ["--source", self.source, "--out-csv", self.output().path]


class MakeDataset(StepTask):
    """Clean and split into partitioned Parquet."""

    step = "make-dataset"

    def requires(self):  # noqa: D102
        return self.clone(Download)

    def output(self):  # noqa: D102
        return DirectoryTarget(self.path("dataset", SUCCESS_FLAG))

    @property
    def dataset_dir(self) -> str:
        """The data set directory (the output is its ``_SUCCESS`` flag)."""
        return str(as_path(self.output().path).parent)

    def arguments(self):  # noqa: D102
        return ["--in-csv", self.input().path, "--out-dir", self.dataset_dir]


class Train(StepTask):
    """Fit the model."""

    step = "train"

    def requires(self):  # noqa: D102
        return self.clone(MakeDataset)

    def output(self):  # noqa: D102
        return OutputTarget(self.path("model", "model.joblib"))

    def arguments(self):  # noqa: D102
        return ["--dataset-dir", self.requires().dataset_dir, "--out-model", self.output().path]


class Evaluate(StepTask):
    """Score the test split and render the report."""

    step = "evaluate"

    def requires(self):  # noqa: D102
        return {"dataset": self.clone(MakeDataset), "model": self.clone(Train)}

    def output(self):  # noqa: D102
        return OutputTarget(self.path("report", "report.html"))

    def arguments(self):  # noqa: D102
        return ["--dataset-dir", self.requires()["dataset"].dataset_dir,
                "--model", self.input()["model"].path, "--out-report", self.output().path]


class Predict(StepTask):
    """Score one inventory file with the model of this source, and write its buyer's sheet.

    The output is the predictions CSV; the step writes the sheet (the same name
    with ``.html``) before it, and the task is complete only with both, so that
    predictions whose sheet is missing are made again, with one.
    """

    step = "predict"
    inventory = luigi.Parameter(description="CSV of wines to score (input schema)")

    def requires(self):  # noqa: D102
        return self.clone(Train)

    @functools.cached_property
    def _name(self) -> str:
        return inventory_key(self.inventory)

    def output(self):  # noqa: D102
        return OutputTarget(self.path("predictions", self._name))

    @property
    def sheet(self) -> str:
        """The buyer's sheet beside the predictions.

        Named as :func:`pipeline.steps.predict.sheet_path` names it; not imported,
        since the orchestrator's image has no pandas.
        """
        return str(as_path(self.output().path).with_suffix(".html"))

    def complete(self) -> bool:  # noqa: D102
        return super().complete() and as_path(self.sheet).is_file()

    def arguments(self):  # noqa: D102
        return ["--model", self.input().path, "--input", self.inventory,
                "--output", self.output().path, "--sheet"]


def run_pipeline(
    source: str,
    data_root: str,
    runner: str = "local",
    scheduler: str | None = None,
    luigi_url: str | None = None,
    workers: int = 1,
    inventories: Sequence[str] = (),
    log_level: str | None = None,
) -> tuple[bool, Evaluate, list[Predict]]:
    """Build the DAG up to the report (and the predictions) and run what is not complete.

    Parameters
    ----------
    source : str
        Data source for ``download``.
    data_root : str
        Directory of all outputs.
    runner : {"local", "docker"}
        How each step is started.
    scheduler : str, optional
        Dask scheduler address given to every Dask step.
    luigi_url : str, optional
        Central luigid (e.g. ``http://luigid:8082``); default a local scheduler.
    workers : int, default 1
        luigi worker processes.
    inventories : sequence of str, optional
        Inventory files to score with the trained model, one Predict task each.
    log_level : str, optional
        ``--log-level`` of every step (``WINE_LOG_LEVEL`` in its environment).

    Returns
    -------
    ok : bool
        Whether every task succeeded (or was already complete).
    task : Evaluate
        The report's task, whose requirements name the data set and the model.
    predictions : list of Predict
        One task per inventory, in order.
    """
    common = {"source": source, "data_root": data_root, "runner": runner,
              "scheduler": scheduler, "log_level": log_level}
    final = Evaluate(**common)
    predictions = [Predict(inventory=str(path), **common) for path in inventories]
    # The CLI has configured logging already; luigi's own set-up would print every line twice.
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")
    options: dict = {"workers": workers, "detailed_summary": True}
    if luigi_url:
        options["scheduler_url"] = luigi_url
    else:
        options["local_scheduler"] = True
    result = luigi.build([final, *predictions], **options)
    # A central luigid may hold a task as running under a worker that has died (an
    # orchestrator restart): luigi then reports success with nothing run, so the
    # outputs themselves are the judge.
    ok = result.scheduling_succeeded and result.status.name.startswith("SUCCESS")
    ok = ok and final.complete() and all(task.complete() for task in predictions)
    return ok, final, predictions
