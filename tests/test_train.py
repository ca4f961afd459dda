from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import read_split
from pipeline.dataset import Dataset
from pipeline.distributed.fit import fit_candidates
from pipeline.distributed.gbm import fit_booster, fit_stacked_gbm
from pipeline.features import FeatureSpec
from pipeline.gbm import (
    GBM_PARAMS,
    LABEL,
    MIN_TREES,
    SMALL_ROWS,
    TEXT_WEIGHTS,
    boosting_plan,
    choose_text_weight,
)
from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES
from pipeline.metrics import regression_metrics
from pipeline.model import SgdModel, StackedGbmModel, n_epochs
from pipeline.model_file import load_model
from pipeline.sgd import (
    FULL,
    N_FOLDS,
    TrainBlock,
    chains_for,
    hash_block,
    new_models,
    oof_frame,
    visit,
    visit_order,
)
from pipeline.splitting import fold_of
from pipeline.steps.evaluate import explanations
from pipeline.steps.train import VALID_SCORE_ROWS, train


def fit(client, dataset, **kwargs):
    files = Dataset(dataset).files
    return fit_candidates(client, files("train"), files("valid"), **kwargs)


def test_model_file_holds_spec_estimator_and_metadata(model_path, dataset_dir):
    model = load_model(model_path)
    assert isinstance(model.spec, FeatureSpec)
    meta = model.metadata
    assert meta["model"] == "sgd"
    assert meta["train"]["rows"] == len(read_split(dataset_dir, "train"))
    assert meta["train"]["epochs"] == n_epochs(meta["train"]["rows"])
    assert set(meta["versions"]) >= {"python", "dask", "distributed", "scikit-learn", "lightgbm"}
    assert len(meta["data_fingerprint"]) == 16
    assert meta["valid_metrics"]["n"] == len(read_split(dataset_dir, "valid"))


def test_scaling_is_learned_on_train_only(model_path, dataset_dir):
    model = load_model(model_path)
    train = read_split(dataset_dir, "train")
    expected = np.log1p(train["price"].dropna()).mean()
    assert model.spec.numeric_mean_[0] == pytest.approx(expected, rel=1e-9)


def test_validation_beats_the_mean_by_far(model_path, dataset_dir):
    model = load_model(model_path)
    valid = read_split(dataset_dir, "valid")
    ours = regression_metrics(valid["points"], model.predict(valid))
    mean = regression_metrics(valid["points"], np.full(len(valid), model.target_mean_))
    assert ours["mae"] == pytest.approx(model.metadata["valid_metrics"]["mae"])
    assert ours["mae"] < 1.45
    assert ours["mae"] < 0.65 * mean["mae"]
    assert ours["r2"] > 0.6


def test_same_seed_same_model(client, dataset_dir):
    a = fit(client, dataset_dir, kinds=("sgd",), seed=3, epochs=3)["sgd"].model
    b = fit(client, dataset_dir, kinds=("sgd",), seed=3, epochs=3)["sgd"].model
    valid = read_split(dataset_dir, "valid")
    np.testing.assert_array_equal(a.predict(valid), b.predict(valid))


def test_recorded_statistics_give_the_same_model(client, dataset_dir):
    recorded = Dataset(dataset_dir).train_stats()
    assert recorded is not None
    first = fit(client, dataset_dir, kinds=("sgd",), seed=1, epochs=2, train_stats=recorded)
    second = fit(client, dataset_dir, kinds=("sgd",), seed=1, epochs=2)
    (a, info_a), (b, info_b) = ((c["sgd"].model, c["sgd"].info) for c in (first, second))
    assert info_a["stats_from_dataset"] and not info_b["stats_from_dataset"]
    np.testing.assert_allclose(a.spec.numeric_mean_, b.spec.numeric_mean_)
    np.testing.assert_allclose(a.spec.numeric_std_, b.spec.numeric_std_)
    assert a.target_mean_ == pytest.approx(b.target_mean_)
    np.testing.assert_allclose(a.estimator_.coef_, b.estimator_.coef_, rtol=1e-6, atol=1e-9)
    # Statistics of other files (a data set changed by hand) are not trusted.
    stale = {"part.99999.parquet": next(iter(recorded.values()))}
    third = fit(client, dataset_dir, kinds=("sgd",), seed=1, epochs=1, train_stats=stale)
    assert not third["sgd"].info["stats_from_dataset"]


def test_big_validation_splits_are_scored_on_evenly_spread_rows(client, dataset_dir, tmp_path):
    assert Dataset(dataset_dir).step("valid", VALID_SCORE_ROWS) == 1  # the sample: every row
    shutil.copytree(dataset_dir, tmp_path / "big")
    (tmp_path / "big" / "stats.json").write_text(
        json.dumps({"valid": 10 * VALID_SCORE_ROWS + 1}))
    assert Dataset(tmp_path / "big").step("valid", VALID_SCORE_ROWS) == 11
    files = sorted((dataset_dir / "valid").glob("*.parquet"))
    rows = pd.concat([pd.read_parquet(f).iloc[::3] for f in files])
    found = fit(client, dataset_dir, epochs=1, valid_step=3)
    for candidate in found.values():  # both candidates, on the same rows
        np.testing.assert_array_equal(candidate.pairs[:, 0], rows["points"].to_numpy())
    np.testing.assert_allclose(found["sgd"].pairs[:, 1],
                               found["sgd"].model.predict(rows), atol=1e-9)
    np.testing.assert_allclose(found["lightgbm"].pairs[:, 1],
                               found["lightgbm"].model.predict(rows), atol=1e-6)


def test_stale_recorded_statistics_are_ignored(dataset_dir, tmp_path):
    copy = tmp_path / "dataset"
    shutil.copytree(dataset_dir, copy)
    path = copy / "train_stats.json"
    record = json.loads(path.read_text())
    for part in record["partitions"].values():
        part["features"] = part["features"][:-1]  # made with other numeric features
    path.write_text(json.dumps(record))
    assert Dataset(copy).train_stats() is None
    path.unlink()  # a data set made before the file existed
    assert Dataset(copy).train_stats() is None


def test_epochs_scale_with_rows():
    assert n_epochs(1_000) == 40
    assert n_epochs(100_000) == 3
    assert n_epochs(20_000) == 10


def test_boosting_costs_less_per_row_as_rows_grow():
    sizes = [1_000, SMALL_ROWS, 2 * SMALL_ROWS, 8 * SMALL_ROWS, 20 * SMALL_ROWS, 10**8]
    plans = [boosting_plan(rows) for rows in sizes]
    tuned = {k: GBM_PARAMS[k] for k in ("n_estimators", "learning_rate")}
    assert plans[0] == plans[1] == tuned  # the tuned plan on small data
    trees = [p["n_estimators"] for p in plans]
    assert trees == sorted(trees, reverse=True) and trees[-1] == MIN_TREES
    assert len(set(trees[1:4])) == 3  # falling between
    # Trees times learning rate stays that of the tuned plan (the same total shrinkage).
    budget = tuned["n_estimators"] * tuned["learning_rate"]
    assert all(abs(p["n_estimators"] * p["learning_rate"] - budget) < 0.05 for p in plans)


def test_incomplete_dataset_is_refused(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="_SUCCESS"):
        Dataset(tmp_path)


def test_interval_is_calibrated_on_validation(model_path, dataset_dir):
    model = load_model(model_path)
    low, high = model.metadata["interval"]["residual_quantiles"]
    assert low < 0 < high
    valid = read_split(dataset_dir, "valid")
    iv = model.predict_interval(valid)
    inside = ((valid["points"] >= iv["lower"]) & (valid["points"] <= iv["upper"])).mean()
    assert 0.75 <= inside <= 0.85
    assert model.metadata["interval"]["coverage"] == 0.8


def test_lightgbm_stacked_on_the_text_score(tmp_path, client, dataset_dir, model_path):
    out = tmp_path / "gbm.joblib"
    gbm = train(dataset_dir, out, model_kind="lightgbm")
    assert isinstance(gbm, StackedGbmModel)
    assert isinstance(gbm.text_model_, SgdModel)
    assert 1 <= gbm.best_iteration_ <= 2000
    assert load_model(out).metadata["model"] == "lightgbm"
    test = read_split(dataset_dir, "test")
    ours = regression_metrics(test["points"], gbm.predict(test))
    linear = regression_metrics(test["points"], load_model(model_path).predict(test))
    assert ours["mae"] < 1.35
    # Stacking must not be worse than the linear model it is built on (beyond noise).
    assert ours["mae"] < linear["mae"] + 0.02
    iv = gbm.predict_interval(test)
    inside = ((test["points"] >= iv["lower"]) & (test["points"] <= iv["upper"])).mean()
    assert 0.7 <= inside <= 0.9
    assert gbm.text_weight_ in TEXT_WEIGHTS

    # Contributions add up to the blended prediction, whatever the blend.
    rows = test.head(50)
    for weight in (gbm.text_weight_, 0.3):
        gbm.text_weight_ = weight
        parts = gbm.contributions(rows)
        np.testing.assert_allclose(parts.sum(axis=1), gbm._raw(rows), atol=1e-6)


def test_text_weight_is_chosen_on_validation_errors():
    rng = np.random.default_rng(0)
    actual = rng.normal(88, 3, 5000)
    # Independent errors of equal size: the even blend halves the variance.
    gbm, text = actual + rng.normal(0, 1, 5000), actual + rng.normal(0, 1, 5000)
    assert choose_text_weight(gbm, text, actual) == 0.5
    assert choose_text_weight(gbm, actual, actual) == 1.0
    assert choose_text_weight(actual, text, actual) == 0.0


def test_cached_char_grams_equal_scikit_learns(sample_csv):
    import pandas as pd
    from sklearn.feature_extraction.text import HashingVectorizer

    from benchmarks.sklearn_features import char_4grams

    texts = pd.read_csv(sample_csv)["description"].head(500).tolist() + ["a", "Ab  cd\tÉté"]
    ours = HashingVectorizer(analyzer=char_4grams, alternate_sign=False).transform(texts)
    theirs = HashingVectorizer(analyzer="char_wb", ngram_range=(4, 4),
                               alternate_sign=False).transform(texts)
    assert (ours != theirs).nnz == 0


def test_explanations_add_up_to_the_predictions(model_path, dataset_dir):
    model = load_model(model_path)
    rows = read_split(dataset_dir, "test").head(300)
    importance, explained = explanations(model, rows)
    predicted = model.predict(rows)
    # The highest- and the lowest-predicted wine, each with the prediction it was given.
    wines = explained.drop_duplicates("id")
    assert wines["id"].tolist() == [rows["id"].iloc[np.argmax(predicted)],
                                    rows["id"].iloc[np.argmin(predicted)]]
    assert wines["predicted_points"].to_numpy() == pytest.approx(
        [predicted.max(), predicted.min()], abs=1e-4)
    # Every feature group's contribution is there (the title's too): they add up to
    # the unclipped prediction.
    raw = model._raw(rows)
    assert explained.groupby("id", sort=False)["contribution"].sum().to_numpy() == \
        pytest.approx([raw.max(), raw.min()], abs=1e-4)
    assert set(explained["feature"]) == {*model.spec.blocks(), "baseline"}
    # Global importance: the mean size of each feature group's contribution, baseline aside.
    contrib = model.contributions(rows)
    expected = contrib.drop(columns="baseline").abs().mean().sort_values(ascending=False)
    assert importance["feature"].tolist() == expected.index.tolist()
    assert importance["mean_abs_contribution"].to_numpy() == pytest.approx(expected.to_numpy())


def _block(rows: int, seed: int = 0) -> TrainBlock:
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 30)) * (rng.random((rows, 30)) < 0.2)
    return TrainBlock(x=sp.csr_matrix(x.astype(np.float32)), y=rng.normal(0, 3, rows),
                      fold=rng.integers(0, N_FOLDS, rows).astype(np.int8))


def test_each_fold_model_learns_only_the_rows_outside_its_fold():
    block = _block(400)
    models = visit(new_models([FULL, *range(N_FOLDS)], seed=0), block)
    # SGD counts its updates: one per row seen (t_ starts at 1).
    assert models[FULL].t_ - 1 == 400
    for k in range(N_FOLDS):
        assert models[k].t_ - 1 == int((block.fold != k).sum())
    # A second block continues every model where it left off.
    visit(models, _block(100, seed=1))
    assert models[FULL].t_ - 1 == 500


def test_out_of_fold_scores_come_from_the_model_that_did_not_see_the_row(sample_csv):
    df = pd.read_csv(sample_csv, index_col=0).head(300)
    df["vintage"] = np.nan
    spec = FeatureSpec().fit(df)
    block = hash_block(df, spec, y_mean=88.0, dense=True)
    assert (block.fold == fold_of(df["description"], N_FOLDS)).all()
    models = visit(new_models([FULL, *range(N_FOLDS)], seed=0), block)
    frame = oof_frame(block, [models], y_mean=88.0)
    for k in range(N_FOLDS):
        rows = np.flatnonzero(block.fold == k)
        expected = models[k].predict(block.x[rows]) + 88.0
        np.testing.assert_allclose(frame["text_score"].to_numpy()[rows], expected, rtol=1e-6)
    np.testing.assert_allclose(frame["_label"], df["points"] - 88.0)


def test_chains_share_the_work_and_visit_one_workers_blocks_at_a_time():
    chains = chains_for([FULL, *range(N_FOLDS)], workers=2)
    assert sorted(k for c in chains for k in c) == [FULL, *range(N_FOLDS)]
    assert len(chains) == 2 and FULL in chains[0]
    assert chains_for([FULL], workers=2) == [[FULL]]
    placement = ["a", "b"] * 5
    for chain in (0, 1):
        order = visit_order(placement, chain, epoch=0, seed=0)
        assert sorted(order) == list(range(10))
        holders = [placement[i] for i in order]
        assert holders[:5] == [holders[0]] * 5  # one worker's blocks, then the other's
        assert holders[0] == ("a" if chain == 0 else "b")
    assert visit_order(placement, 0, 0, 0) != visit_order(placement, 0, 1, 0)  # new order


def _count_hashed_rows(dask_worker=None):
    import pipeline.features as features

    original = features.FeatureSpec.transform
    if getattr(original, "_counting", False):
        return
    features.HASHED_ROWS = 0

    def counting(self, df):
        features.HASHED_ROWS += len(df)
        return original(self, df)

    counting._counting = True
    features.FeatureSpec.transform = counting


def _hashed_rows(dask_worker=None):
    import pipeline.features as features

    return getattr(features, "HASHED_ROWS", 0)


def test_nothing_is_hashed_twice(client, dataset_dir):
    client.run(_count_hashed_rows)
    before = sum(client.run(_hashed_rows).values())
    fit(client, dataset_dir, epochs=2)
    hashed = sum(client.run(_hashed_rows).values()) - before
    # Every training row once, every validation row once: all the models (the linear
    # model, the five fold models, the GBM) and their validation come from that.
    assert hashed == len(read_split(dataset_dir, "train")) + len(read_split(dataset_dir,
                                                                          "valid"))


def test_the_model_places_its_interval_on_the_validation_rows(client, model_path, dataset_dir):
    model = load_model(model_path)
    record = model.metadata["interval"]
    valid = read_split(dataset_dir, "valid")
    assert record["rows"] == len(valid)
    assert record["kind"] == model.interval_kind in ("adaptive", "constant")
    constant = (model.interval_ if model.interval_kind == "constant" else model.other_interval_)
    assert [constant.low_, constant.high_] == record["constant_offsets"]
    assert record["residual_quantiles"] == record["constant_offsets"]
    # The constant offsets bound 80% of the validation residuals; whichever range is given
    # holds the prediction, and its record says why when it is the constant one.
    table = record["valid_constant"]
    assert table["all"]["n"] == len(valid) and abs(table["all"]["coverage"] - 0.8) < 0.01
    assert set(table) == {"all", "price band", "critic"}
    assert (record["kind"] == "constant") == ("reason" in record)
    ranges = model.predict_interval(valid)
    assert (ranges["lower"] <= ranges["predicted_points"]).all()
    assert (ranges["predicted_points"] <= ranges["upper"]).all()
    if model.interval_kind == "adaptive":  # the range differs from wine to wine
        assert (ranges["upper"] - ranges["lower"]).std() > 0.05
    both = model.predict_interval(valid, other=True)
    assert both[list(ranges.columns)].equals(ranges)
    assert (both["other_lower"] <= both["predicted_points"]).all()
    assert (both["predicted_points"] <= both["other_upper"]).all()


def test_evaluate_reports_the_interval_overall_and_per_segment(client, model_path, dataset_dir,
                                                              tmp_path):
    from pipeline.steps.evaluate import evaluate

    metrics = evaluate(dataset_dir, model_path, tmp_path / "report.html")
    test = read_split(dataset_dir, "test")
    record = metrics["interval"]
    assert record["kind"] == load_model(model_path).interval_kind
    used = record["test"]
    assert used["all"]["n"] == len(test)
    assert used["all"]["coverage"] == pytest.approx(metrics["model"]["interval_coverage"])
    by_critic = test["taster_name"].fillna("unknown").value_counts()
    assert {k: v["n"] for k, v in used["critic"].items()} == {
        k: v for k, v in by_critic.items() if v >= 30}
    assert sum(v["n"] for v in used["price band"].values()) <= len(test)
    document = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "All test wines" in document and "Critic: Roger Voss" in document
    assert f"{100 * used['all']['coverage']:.0f}%" in document
    if record.get("other") is not None:  # both kinds side by side
        assert record["other"]["test"]["all"]["n"] == len(test)
        assert "range: held" in document


def _gbm_rows(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows).astype(np.float32)
                          for name in GBM_FEATURES})
    for name in GBM_CATEGORIES:
        frame[name] = rng.integers(0, 8, size=rows).astype(np.float32)
    frame[LABEL] = 2.0 * frame["text_score"] + rng.normal(size=rows)
    return frame


def test_the_gbm_is_the_same_wherever_its_rows_live(client, model_path):
    # LightGBM learns in one task: the model must not depend on which worker made
    # which out-of-fold frame (over several LightGBM machines it did, run to run).
    frames = [_gbm_rows(3_000, seed) for seed in range(4)]
    valid = _gbm_rows(1_000, seed=9)
    text_model = load_model(model_path)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    predictions = []
    for shift in (0, 1):
        placed = [client.scatter(f, workers=[workers[(i + shift) % 2]], hash=False)
                  for i, f in enumerate(frames)]
        holders = [client.who_has([f])[f.key] for f in placed]
        assert holders == [(workers[(i + shift) % 2],) for i in range(len(frames))]
        model, info, predicted = fit_stacked_gbm(client, placed, 12_000, valid, text_model)
        assert info["threads"] == 1 and info["gbm_rows"] == 12_000
        predictions.append(predicted)
    np.testing.assert_array_equal(*predictions)
    # And the same as LightGBM on the same rows in this process.
    params = {**GBM_PARAMS, **boosting_plan(12_000)}
    booster, curve = fit_booster(frames, valid, params, seed=0, threads=1)
    best = int(np.argmin(curve)) + 1
    assert model.best_iteration_ == best
    np.testing.assert_array_equal(
        model.booster_.predict(valid[list(GBM_FEATURES)], num_iteration=best),
        booster.predict(valid[list(GBM_FEATURES)], num_iteration=best))
