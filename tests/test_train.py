from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import read_split
from pipeline.explain import contributions
from pipeline.features import FeatureSpec
from pipeline.gbm import TEXT_WEIGHTS, choose_text_weight
from pipeline.metrics import regression_metrics
from pipeline.model import SgdModel, StackedGbmModel, load_model
from pipeline.sgd import fit_and_score_sgd, fit_sgd, n_epochs
from pipeline.steps.evaluate import explanations
from pipeline.steps.train import (
    VALID_SCORE_ROWS,
    recorded_train_stats,
    require_dataset,
    train,
    validate,
    validation_step,
)


def test_model_file_holds_spec_estimator_and_metadata(model_path, dataset_dir):
    model = load_model(model_path)
    assert isinstance(model.spec, FeatureSpec)
    meta = model.metadata
    assert meta["model"] == "sgd"
    assert meta["train"]["rows"] == len(read_split(dataset_dir, "train"))
    assert meta["train"]["epochs"] == n_epochs(meta["train"]["rows"])
    assert set(meta["versions"]) >= {"python", "dask", "distributed", "scikit-learn", "dask-ml"}
    assert len(meta["data_fingerprint"]) == 16
    assert meta["valid_metrics"]["n"] == len(read_split(dataset_dir, "valid"))


def test_scaling_is_learned_on_train_only(model_path, dataset_dir):
    model = load_model(model_path)
    train = read_split(dataset_dir, "train")
    expected = np.log1p(train["price"].dropna()).mean()
    assert model.spec.numeric_mean[0] == pytest.approx(expected, rel=1e-9)


def test_validation_beats_the_mean_by_far(model_path, dataset_dir):
    model = load_model(model_path)
    valid = read_split(dataset_dir, "valid")
    ours = regression_metrics(valid["points"], model.predict_frame(valid))
    mean = regression_metrics(valid["points"], np.full(len(valid), model.target_mean))
    assert ours["mae"] == pytest.approx(model.metadata["valid_metrics"]["mae"])
    assert ours["mae"] < 1.45
    assert ours["mae"] < 0.65 * mean["mae"]
    assert ours["r2"] > 0.6


def test_same_seed_same_model(client, dataset_dir):
    a, _ = fit_sgd(dataset_dir / "train", seed=3, epochs=3)
    b, _ = fit_sgd(dataset_dir / "train", seed=3, epochs=3)
    valid = read_split(dataset_dir, "valid")
    np.testing.assert_array_equal(a.predict_frame(valid), b.predict_frame(valid))


def test_recorded_statistics_give_the_same_model(client, dataset_dir):
    recorded = recorded_train_stats(dataset_dir)
    assert recorded is not None
    a, info_a, _ = fit_and_score_sgd(dataset_dir / "train", None, seed=1, epochs=2,
                                     train_stats=recorded)
    b, info_b, _ = fit_and_score_sgd(dataset_dir / "train", None, seed=1, epochs=2)
    assert info_a["stats_from_dataset"] and not info_b["stats_from_dataset"]
    np.testing.assert_allclose(a.spec.numeric_mean, b.spec.numeric_mean)
    np.testing.assert_allclose(a.spec.numeric_std, b.spec.numeric_std)
    assert a.target_mean == pytest.approx(b.target_mean)
    np.testing.assert_allclose(a.estimator.coef_, b.estimator.coef_, rtol=1e-6, atol=1e-9)
    # Statistics of other files (a data set changed by hand) are not trusted.
    stale = {"part.99999.parquet": next(iter(recorded.values()))}
    _, info_c, _ = fit_and_score_sgd(dataset_dir / "train", None, seed=1, epochs=1,
                                     train_stats=stale)
    assert not info_c["stats_from_dataset"]


def test_big_validation_splits_are_scored_on_evenly_spread_rows(client, dataset_dir,
                                                                 model_path, tmp_path):
    assert validation_step(dataset_dir) == 1  # the sample's few hundred: every row
    (tmp_path / "stats.json").write_text(json.dumps({"valid": 10 * VALID_SCORE_ROWS + 1}))
    assert validation_step(tmp_path) == 11
    files = sorted((dataset_dir / "valid").glob("*.parquet"))
    expected = sum(len(range(0, len(pd.read_parquet(f)), 3)) for f in files)
    _, _, pairs = fit_and_score_sgd(dataset_dir / "train", dataset_dir / "valid", epochs=1,
                                    valid_step=3)
    assert len(pairs) == expected
    metrics, _ = validate(dataset_dir / "valid", load_model(model_path), step=3)
    assert metrics["n"] == expected


def test_stale_recorded_statistics_are_ignored(dataset_dir, tmp_path):
    copy = tmp_path / "dataset"
    shutil.copytree(dataset_dir, copy)
    path = copy / "train_stats.json"
    record = json.loads(path.read_text())
    for part in record["partitions"].values():
        part["features"] = part["features"][:-1]  # made with other numeric features
    path.write_text(json.dumps(record))
    assert recorded_train_stats(copy) is None
    path.unlink()  # a data set made before the file existed
    assert recorded_train_stats(copy) is None


def test_epochs_scale_with_rows():
    assert n_epochs(1_000) == 40
    assert n_epochs(100_000) == 3
    assert n_epochs(20_000) == 10


def test_incomplete_dataset_is_refused(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="_SUCCESS"):
        require_dataset(tmp_path)


def test_interval_is_calibrated_on_validation(model_path, dataset_dir):
    model = load_model(model_path)
    low, high = model.residual_quantiles
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
    assert isinstance(gbm.text_model, SgdModel)
    assert 1 <= gbm.best_iteration <= 2000
    assert load_model(out).metadata["model"] == "lightgbm"
    test = read_split(dataset_dir, "test")
    ours = regression_metrics(test["points"], gbm.predict_frame(test))
    linear = regression_metrics(test["points"], load_model(model_path).predict_frame(test))
    assert ours["mae"] < 1.35
    # Stacking must not be worse than the linear model it is built on (beyond noise).
    assert ours["mae"] < linear["mae"] + 0.02
    iv = gbm.predict_interval(test)
    inside = ((test["points"] >= iv["lower"]) & (test["points"] <= iv["upper"])).mean()
    assert 0.7 <= inside <= 0.9
    assert gbm.text_weight in TEXT_WEIGHTS

    # Contributions add up to the blended prediction, whatever the blend.
    rows = test.head(50)
    for weight in (gbm.text_weight, 0.3):
        gbm.text_weight = weight
        parts = contributions(gbm, rows)
        np.testing.assert_allclose(parts.sum(axis=1), gbm.predict_raw(rows), atol=1e-6)


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

    from pipeline.features import char_4grams

    texts = pd.read_csv(sample_csv)["description"].head(500).tolist() + ["a", "Ab  cd\tÉté"]
    ours = HashingVectorizer(analyzer=char_4grams, alternate_sign=False).transform(texts)
    theirs = HashingVectorizer(analyzer="char_wb", ngram_range=(4, 4),
                               alternate_sign=False).transform(texts)
    assert (ours != theirs).nnz == 0


def test_explanations_add_up_to_the_predictions(model_path, dataset_dir):
    model = load_model(model_path)
    rows = read_split(dataset_dir, "test").head(300)
    importance, explained = explanations(model, rows)
    predicted = model.predict_frame(rows)
    # The highest- and the lowest-predicted wine, each with the prediction it was given.
    wines = explained.drop_duplicates("id")
    assert wines["id"].tolist() == [rows["id"].iloc[np.argmax(predicted)],
                                    rows["id"].iloc[np.argmin(predicted)]]
    assert wines["predicted_points"].to_numpy() == pytest.approx(
        [predicted.max(), predicted.min()], abs=1e-4)
    # Every feature group's contribution is there (the title's too): they add up to
    # the unclipped prediction.
    raw = model.predict_raw(rows)
    assert explained.groupby("id", sort=False)["contribution"].sum().to_numpy() == \
        pytest.approx([raw.max(), raw.min()], abs=1e-4)
    assert set(explained["feature"]) == {*model.spec.blocks(), "baseline"}
    # Global importance: the mean size of each feature group's contribution, baseline aside.
    contrib = contributions(model, rows)
    expected = contrib.drop(columns="baseline").abs().mean().sort_values(ascending=False)
    assert importance["feature"].tolist() == expected.index.tolist()
    assert importance["mean_abs_contribution"].to_numpy() == pytest.approx(expected.to_numpy())
