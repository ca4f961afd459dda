"""cross_validate on the sample: every labelled row is test data once, the summary is the folds'.

The cheapest run it offers (three folds, SGD without LightGBM) on the sample's data
set, on the real LocalCluster.  The folds' frames are recorded on their way to the
baselines and the model fit, so the test sees exactly what each fold trained and
scored on.  Slow (the fixture needs the cluster), but for the summary's own unit test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pipeline.distributed.fit
from conftest import read_split
from pipeline import cross_validate as cv
from pipeline.atomic import NotOurs
from pipeline.splitting import SPLITS

FOLDS = 3
MODELS = ("mean", "price_only", "sgd")


@pytest.fixture(scope="module")
def run(tmp_path_factory, client, dataset_dir):
    """The report, its file, and per fold the frames the baselines and the fit were given."""
    seen: list[dict[str, pd.DataFrame]] = []
    baselines, fit_candidates = cv._baselines, pipeline.distributed.fit.fit_candidates

    def recording_baselines(train, test):
        seen.append({"train": train, "test": test})
        return baselines(train, test)

    def recording_fit(client, train_files, valid_files, **kwargs):
        seen[-1].update(fit_train=pd.concat(map(pd.read_parquet, train_files)),
                        fit_valid=pd.concat(map(pd.read_parquet, valid_files)),
                        kinds=kwargs["kinds"])
        return fit_candidates(client, train_files, valid_files, **kwargs)

    out = tmp_path_factory.mktemp("cv") / "cv.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cv, "_baselines", recording_baselines)
        mp.setattr(pipeline.distributed.fit, "fit_candidates", recording_fit)
        report = cv.cross_validate(dataset_dir, out, folds=FOLDS, models=("sgd",))
    return report, out, seen


def labelled(dataset_dir) -> pd.DataFrame:
    return pd.concat([read_split(dataset_dir, s) for s in SPLITS], ignore_index=True)


def test_every_labelled_row_is_test_data_in_exactly_one_fold(run, dataset_dir):
    report, _, seen = run
    rows = labelled(dataset_dir)
    assert report["rows"] == len(rows) and len(seen) == len(report["folds"]) == FOLDS
    test_ids = np.concatenate([fold["test"]["id"].to_numpy() for fold in seen])
    assert sorted(test_ids) == sorted(rows["id"])  # each row once, none left out
    fold_of = pd.Series(np.repeat(range(FOLDS), [len(f["test"]) for f in seen]), index=test_ids)
    # A review and its duplicates are in the same fold (the fold is a hash of the text).
    assert (rows.assign(fold=fold_of.loc[rows["id"]].to_numpy())
            .groupby("description")["fold"].nunique().max()) == 1
    for k, (fold, record) in enumerate(zip(seen, report["folds"], strict=True)):
        test, train, valid = (set(fold[name]["id"]) for name in ("test", "fit_train",
                                                                   "fit_valid"))
        assert record["fold"] == k and fold["kinds"] == ("sgd",)
        # The models learn (and validate) on the other folds only, each row once.
        assert not test & train and not test & valid and not train & valid
        assert train | valid | test == set(rows["id"])
        assert set(fold["train"]["id"]) == train  # the baselines learn on the same rows
        assert (record["test_rows"], record["train_rows"]) == (len(test), len(train))
        assert 0.25 < len(test) / len(rows) < 0.42, "the folds are about the same size"
        assert 0.05 < len(valid) / (len(train) + len(valid)) < 0.2  # one bucket in eight


def test_each_folds_metrics_are_those_of_its_test_rows(run):
    report, _, seen = run
    for fold, record in zip(seen, report["folds"], strict=True):
        test, train = fold["test"], fold["train"]
        assert {m: record[m]["n"] for m in MODELS} == dict.fromkeys(MODELS, len(test))
        assert "lightgbm" not in record
        # The mean baseline, recomputed: the training rows' mean as every prediction.
        error = (test["points"] - train["points"].mean()).abs()
        assert record["mean"]["mae"] == pytest.approx(error.mean(), rel=1e-9)
        assert record["mean"]["within_2"] == pytest.approx((error <= 2).mean())
        assert record["sgd"]["mae"] < record["price_only"]["mae"] < record["mean"]["mae"]
        assert record["sgd"]["r2"] > 0.5


def test_the_summary_is_the_mean_and_95_percent_interval_of_the_folds(run):
    report, _, _ = run
    summary = report["summary"]
    assert set(summary) == set(MODELS)
    for model in MODELS:
        for metric in ("mae", "r2", "within_2"):
            values = np.array([f[model][metric] for f in report["folds"]])
            low, high = stats.t.interval(0.95, FOLDS - 1, loc=values.mean(),
                                         scale=stats.sem(values))
            assert summary[model][f"{metric}_mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert summary[model][f"{metric}_ci95"] == pytest.approx((high - low) / 2,
                                                                     rel=1e-9)
            assert values.min() <= summary[model][f"{metric}_mean"] <= values.max()


def test_summarise_without_repeats_has_no_interval():
    one = cv.summarise([{"fold": 0, "mean": {"mae": 2.5, "r2": 0.0, "within_2": 0.5}}])
    assert one["mean"]["mae_mean"] == 2.5 and math.isnan(one["mean"]["mae_ci95"])
    assert set(one) == {"mean"}  # models that were not fitted are left out


def test_the_report_is_written_atomically_and_only_over_its_own(run, dataset_dir,
                                                                monkeypatch):
    report, out, _ = run
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    # Only the report and its marker: no temporary left beside it.
    assert sorted(p.name for p in out.parent.iterdir()) == [f".{out.name}.wine-pipeline",
                                                            out.name]
    before = out.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("a worker died")

    monkeypatch.setattr(pipeline.distributed.fit, "fit_candidates", broken)
    with pytest.raises(RuntimeError, match="a worker died"):
        cv.cross_validate(dataset_dir, out, folds=FOLDS, models=("sgd",))
    assert out.read_bytes() == before  # the earlier report stands, whole
    assert sorted(p.name for p in out.parent.iterdir()) == [f".{out.name}.wine-pipeline",
                                                            out.name]
    # A file it did not write is refused before any work, as is the data set itself.
    foreign = out.parent / "notes.json"
    foreign.write_text("{}")
    with pytest.raises(NotOurs, match="did not write it"):
        cv.cross_validate(dataset_dir, foreign, folds=FOLDS, models=("sgd",))
    assert foreign.read_text() == "{}"
    with pytest.raises(NotOurs, match="it is the input"):
        cv.cross_validate(dataset_dir, dataset_dir, folds=FOLDS, models=("sgd",))
