"""The models on a few rows (predictions, intervals, contributions) and the model file checks."""

from __future__ import annotations

import copy
import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from pipeline.cleaning import clean_partition
from pipeline.features import FeatureSpec
from pipeline.gbm_features import GBM_CATEGORIES, GBM_FEATURES, gbm_frame
from pipeline.intervals import segment_labels, spread_features
from pipeline.model import (
    BASELINE,
    FORMAT_KEY,
    MODEL_FORMAT,
    SgdModel,
    StackedGbmModel,
    clip_points,
)
from pipeline.model_file import (
    MAJOR_CHECKED,
    ModelFileError,
    installed_version,
    load_model,
    package_versions,
)
from pipeline.params import MIN_ADAPTIVE_ROWS


def small_spec() -> FeatureSpec:
    return FeatureSpec(text_features=2**10, char_features=2**10, title_features=2**8,
                       category_features=2**8, bin_features=2**6)


@pytest.fixture(scope="module")
def clean(sample_csv) -> pd.DataFrame:
    raw = pd.read_csv(sample_csv, index_col=0, nrows=900, dtype=str)
    rows, _ = clean_partition(raw, require_points=True)
    return rows


@pytest.fixture(scope="module")
def rows(clean) -> pd.DataFrame:
    """The rows the models learn from."""
    return clean.iloc[:200]


@pytest.fixture(scope="module")
def valid(clean) -> pd.DataFrame:
    """Rows the models did not learn from, enough to try an adaptive interval on."""
    held = clean.iloc[200:]
    assert len(held) >= MIN_ADAPTIVE_ROWS
    return held


@pytest.fixture(scope="module")
def model(rows) -> SgdModel:
    """A real linear model on small hash spaces, fitted on the sample's first rows."""
    return SgdModel(spec=small_spec(), epochs=5,
                    metadata={"model": "sgd", "versions": package_versions()}).fit(rows)


@pytest.fixture(scope="module")
def stacked(model, rows) -> StackedGbmModel:
    """LightGBM on the linear model's (in-sample) text score, blended with it."""
    y = rows["points"].to_numpy(dtype="float64")
    mean = float(y.mean())
    data = lgb.Dataset(gbm_frame(rows, model._raw(rows)), y - mean,
                       categorical_feature=list(GBM_CATEGORIES))
    booster = lgb.train({"objective": "l2", "num_leaves": 7, "min_data_in_leaf": 10,
                         "verbose": -1, "seed": 0}, data, num_boost_round=20)
    return StackedGbmModel(text_model_=model, booster_=booster, best_iteration_=15,
                           target_mean_=mean, text_weight_=0.3,
                           metadata={"model": "lightgbm", "versions": package_versions()})


def with_interval(model, valid: pd.DataFrame):
    """A copy of ``model`` with its interval placed on ``valid``."""
    placed = copy.deepcopy(model)
    predicted = placed.predict(valid)
    dense = gbm_frame(valid, predicted)
    info = placed.fit_interval(spread_features(dense, predicted),
                               valid["points"].to_numpy() - predicted,
                               segment_labels(valid["price"], valid["taster_name"]))
    assert info["rows"] == len(valid)
    return placed


# --- predictions, intervals, contributions ---------------------------------------------

def test_the_linear_model_learns_its_state_in_fit(model, rows):
    assert model.spec.numeric_mean_ is not None
    assert model.target_mean_ == pytest.approx(rows["points"].mean())
    assert model.estimator_.coef_.shape == (model.spec.n_features,)
    unfitted = SgdModel(spec=small_spec())
    with pytest.raises(NotFittedError):
        unfitted.predict(rows)


@pytest.mark.parametrize("name", ["model", "stacked"])
def test_predict_is_the_clipped_raw_prediction(name, rows, request):
    m = request.getfixturevalue(name)
    predicted = m.predict(rows)
    assert predicted.shape == (len(rows),) and predicted.dtype == np.float64
    np.testing.assert_array_equal(predicted, clip_points(m._raw(rows)))
    assert predicted.std() > 0.5
    assert m.predict(rows.iloc[:0]).shape == (0,)


@pytest.mark.parametrize("name", ["model", "stacked"])
def test_contributions_add_up_to_the_unclipped_prediction(name, rows, request):
    m = request.getfixturevalue(name)
    contrib = m.contributions(rows.iloc[:20])
    assert BASELINE in contrib and contrib.index.equals(rows.index[:20])
    groups = (list(m.spec.blocks()) if name == "model" else list(GBM_FEATURES))
    assert list(contrib.columns) == [*groups, BASELINE]
    np.testing.assert_allclose(contrib.sum(axis=1), m._raw(rows.iloc[:20]), atol=1e-6)


@pytest.mark.parametrize("name", ["model", "stacked"])
def test_the_interval_is_placed_and_holds_the_prediction(name, rows, valid, request):
    m = request.getfixturevalue(name)
    with pytest.raises(NotFittedError, match="fit_interval"):
        m.predict_interval(rows)
    placed = with_interval(m, valid)
    assert placed.interval_kind in ("adaptive", "constant")
    assert placed.other_interval_ is not None  # enough rows to try both
    assert {placed.interval_.kind, placed.other_interval_.kind} == {"adaptive", "constant"}
    ranges = placed.predict_interval(rows)
    assert list(ranges.columns) == ["predicted_points", "lower", "upper"]
    assert ranges.index.equals(rows.index)
    np.testing.assert_array_equal(ranges["predicted_points"], m.predict(rows))
    both = placed.predict_interval(rows, other=True)
    assert list(both.columns) == ["predicted_points", "lower", "upper", "other_lower",
                                  "other_upper"]
    assert both[list(ranges.columns)].equals(ranges)
    for low, high in (("lower", "upper"), ("other_lower", "other_upper")):
        assert (both[low] <= both["predicted_points"]).all()
        assert (both["predicted_points"] <= both[high]).all()
    assert not both["lower"].equals(both["other_lower"])
    assert placed.predict_interval(rows.iloc[:0], other=True).empty


def test_few_validation_rows_give_only_the_constant_interval(model, valid):
    placed = with_interval(model, valid.iloc[:50])
    assert placed.interval_kind == "constant" and placed.other_interval_ is None
    both = placed.predict_interval(valid.iloc[:5], other=True)
    assert both["other_lower"].isna().all() and both["other_upper"].isna().all()
    width = both["upper"] - both["lower"]
    assert width.max() <= placed.interval_.high_ - placed.interval_.low_ + 1e-9


def test_annotate_adds_to_the_metadata_in_order(model):
    annotated = copy.deepcopy(model).annotate(trained_at="now", rows=3)
    assert list(annotated.metadata) == ["model", "versions", FORMAT_KEY, "trained_at", "rows"]
    assert annotated.metadata[FORMAT_KEY] == MODEL_FORMAT


# --- the model file --------------------------------------------------------------------

def saved(model: SgdModel, path, **versions: str):
    """Save a copy of the model whose recorded versions differ as given."""
    return copy.deepcopy(model).annotate(
        versions={**model.metadata["versions"], **versions}).save(path)


def bumped(version: str, major: int = 0, minor: int = 0) -> str:
    """``version`` with its major and minor parts moved on."""
    parts = [int(p) for p in version.split(".")[:2]]
    return f"{parts[0] + major}.{max(parts[1] + minor, 0)}.0"


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "pipeline.model_file" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("name", ["model", "stacked"])
def test_a_saved_model_loads_and_predicts_alike(name, rows, valid, tmp_path, request):
    placed = with_interval(request.getfixturevalue(name), valid)
    loaded = load_model(placed.save(tmp_path / "model.joblib"))
    assert type(loaded) is type(placed) and loaded.metadata[FORMAT_KEY] == MODEL_FORMAT
    pd.testing.assert_frame_equal(loaded.predict_interval(rows, other=True),
                                  placed.predict_interval(rows, other=True))


@pytest.mark.parametrize("found", [None, MODEL_FORMAT - 1, MODEL_FORMAT + 1])
def test_a_file_of_another_format_is_refused(model, tmp_path, found):
    other = copy.deepcopy(model)
    if found is None:  # a file written before the format was recorded: format 1
        del other.metadata[FORMAT_KEY]
    else:
        other.annotate(**{FORMAT_KEY: found})
    path = other.save(tmp_path / "model.joblib")
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert str(err.value) == (f"{path}: model file format {found or 1}, this pipeline reads "
                              f"{MODEL_FORMAT}: train it again (`wine-pipeline train`, or "
                              "remove it and `wine-pipeline run` again)")


def test_the_installed_versions_load_without_a_warning(model, rows, tmp_path, caplog):
    assert set(model.metadata["versions"]) >= {"python", "scikit-learn", "lightgbm", "numpy"}
    caplog.set_level(logging.WARNING, logger="pipeline.model_file")
    loaded = load_model(saved(model, tmp_path / "model.joblib"))
    assert warnings_of(caplog) == []
    assert np.array_equal(loaded.predict(rows), model.predict(rows))


def test_a_minor_difference_warns_what_differs_and_loads(model, rows, tmp_path, caplog):
    sklearn, numpy = installed_version("scikit-learn"), installed_version("numpy")
    newer = bumped(sklearn, minor=1)
    path = saved(model, tmp_path / "model.joblib", **{"scikit-learn": newer, "numpy": "1.0.0"})
    caplog.set_level(logging.WARNING, logger="pipeline.model_file")
    loaded = load_model(path)
    (warning,) = warnings_of(caplog)
    assert str(path) in warning and "recorded -> installed" in warning
    assert f"scikit-learn: {newer} -> {sklearn}" in warning
    if numpy != "1.0.0":
        assert f"numpy: 1.0.0 -> {numpy}" in warning
    assert "pandas" not in warning  # the same version is not listed
    assert np.array_equal(loaded.predict(rows), model.predict(rows))


@pytest.mark.parametrize("library", ["scikit-learn", "lightgbm"])
def test_another_major_version_is_refused_naming_the_library(model, tmp_path, library):
    installed = installed_version(library)
    other = bumped(installed, major=1)
    path = saved(model, tmp_path / "model.joblib", **{library: other})
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message
    assert f"trained with {library} {other}, but {library} {installed} is installed" in message
    assert "\n" not in message  # the CLI shows it as its one-line error


def test_dask_ml_is_checked_when_a_model_recorded_it(model, tmp_path, caplog):
    assert "dask-ml" in MAJOR_CHECKED
    caplog.set_level(logging.WARNING, logger="pipeline.model_file")
    installed = installed_version("dask-ml")
    path = saved(model, tmp_path / "model.joblib", **{"dask-ml": "2023.3.24"})
    if installed == "absent":  # no longer a dependency: the difference only warns
        load_model(path)
        (warning,) = warnings_of(caplog)
        assert "dask-ml: 2023.3.24 -> absent" in warning
    else:
        other = bumped(installed, major=1)
        with pytest.raises(ModelFileError, match=f"trained with dask-ml {other}"):
            load_model(saved(model, path, **{"dask-ml": other}))


def test_a_model_without_versions_loads_with_a_warning(model, rows, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="pipeline.model_file")
    bare = copy.deepcopy(model)
    del bare.metadata["versions"]
    loaded = load_model(bare.save(tmp_path / "model.joblib"))
    (warning,) = warnings_of(caplog)
    assert str(tmp_path / "model.joblib") in warning
    assert "records no package versions" in warning
    assert np.array_equal(loaded.predict(rows), model.predict(rows))
