from __future__ import annotations

import numpy as np
import pytest
from conftest import read_split

from pipeline.features import FeatureSpec
from pipeline.metrics import regression_metrics
from pipeline.model import load_model
from pipeline.steps.train import fit_sgd, n_epochs, require_dataset


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


def test_epochs_scale_with_rows():
    assert n_epochs(1_000) == 40
    assert n_epochs(100_000) == 3
    assert n_epochs(20_000) == 10


def test_incomplete_dataset_is_refused(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="_SUCCESS"):
        require_dataset(tmp_path)
