"""The model file's package versions, checked against the installed ones on load."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDRegressor

from pipeline.cleaning import clean_partition
from pipeline.features import FeatureSpec
from pipeline.model import (
    MAJOR_CHECKED,
    ModelFileError,
    SgdModel,
    installed_version,
    load_model,
    package_versions,
)


@pytest.fixture(scope="module")
def rows(sample_csv) -> pd.DataFrame:
    raw = pd.read_csv(sample_csv, index_col=0, nrows=200, dtype=str)
    clean, _ = clean_partition(raw, require_points=True)
    return clean


@pytest.fixture(scope="module")
def model(rows) -> SgdModel:
    """A real linear model on small hash spaces, fitted on the sample's first rows."""
    spec = FeatureSpec(text_features=2**10, char_features=2**10, title_features=2**8,
                       category_features=2**8, bin_features=2**6).fit(rows)
    y = rows["points"].to_numpy(dtype="float64")
    estimator = SGDRegressor(random_state=0).fit(spec.transform(rows), y - y.mean())
    return SgdModel(spec=spec, estimator=estimator, target_mean=float(y.mean()),
                    metadata={"model": "sgd", "versions": package_versions()})


def saved(model: SgdModel, path, **versions: str):
    """Save a copy of the model whose recorded versions differ as given."""
    recorded = {**model.metadata["versions"], **versions}
    copy = SgdModel(spec=model.spec, estimator=model.estimator, target_mean=model.target_mean,
                    metadata={**model.metadata, "versions": recorded})
    return copy.save(path)


def bumped(version: str, major: int = 0, minor: int = 0) -> str:
    """``version`` with its major and minor parts moved on."""
    parts = [int(p) for p in version.split(".")[:2]]
    return f"{parts[0] + major}.{max(parts[1] + minor, 0)}.0"


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "pipeline.model" and r.levelno == logging.WARNING]


def test_the_installed_versions_load_without_a_warning(model, rows, tmp_path, caplog):
    assert set(model.metadata["versions"]) >= {"python", "scikit-learn", "lightgbm", "numpy"}
    caplog.set_level(logging.WARNING, logger="pipeline.model")
    loaded = load_model(saved(model, tmp_path / "model.joblib"))
    assert warnings_of(caplog) == []
    assert np.array_equal(loaded.predict_frame(rows), model.predict_frame(rows))


def test_a_minor_difference_warns_what_differs_and_loads(model, rows, tmp_path, caplog):
    sklearn, numpy = installed_version("scikit-learn"), installed_version("numpy")
    newer = bumped(sklearn, minor=1)
    path = saved(model, tmp_path / "model.joblib", **{"scikit-learn": newer, "numpy": "1.0.0"})
    caplog.set_level(logging.WARNING, logger="pipeline.model")
    loaded = load_model(path)
    (warning,) = warnings_of(caplog)
    assert str(path) in warning and "recorded -> installed" in warning
    assert f"scikit-learn: {newer} -> {sklearn}" in warning
    if numpy != "1.0.0":
        assert f"numpy: 1.0.0 -> {numpy}" in warning
    assert "pandas" not in warning  # the same version is not listed
    assert np.array_equal(loaded.predict_frame(rows), model.predict_frame(rows))


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
    caplog.set_level(logging.WARNING, logger="pipeline.model")
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
    caplog.set_level(logging.WARNING, logger="pipeline.model")
    bare = SgdModel(spec=model.spec, estimator=model.estimator, target_mean=model.target_mean,
                    metadata={"model": "sgd"})
    loaded = load_model(bare.save(tmp_path / "model.joblib"))
    (warning,) = warnings_of(caplog)
    assert str(tmp_path / "model.joblib") in warning
    assert "records no package versions" in warning
    assert np.array_equal(loaded.predict_frame(rows), model.predict_frame(rows))
