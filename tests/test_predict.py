from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_cli
from pipeline.schema import SchemaError
from pipeline.steps.predict import predict, sheet_path


@pytest.fixture()
def inventory(tmp_path, sample_csv) -> pd.DataFrame:
    df = pd.read_csv(sample_csv, index_col=0).head(300).drop(columns="points")
    df.iloc[:20, df.columns.get_loc("country")] = "Atlantis"  # unseen countries
    df.iloc[20:40, df.columns.get_loc("variety")] = "Nonexistent Grape"  # unseen varieties
    df.iloc[40, df.columns.get_loc("description")] = None  # unusable
    return df


def test_scores_unseen_categories_without_points(tmp_path, client, model_path, inventory):
    src = tmp_path / "inventory.csv"
    inventory.to_csv(src)
    out = tmp_path / "pred.csv"
    result = predict(model_path, src, out, blocksize="40KB")
    scored = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert result == {"rows": 300, "rejected": 1}
    assert list(scored.columns) == ["id", "predicted_points", "lower", "upper",
                                    "reject_reason"]
    assert scored["id"].tolist() == inventory.index.tolist()  # input order and ids kept
    good = scored.drop(index=40)
    assert good["predicted_points"].between(80, 100).all()
    assert good["predicted_points"].iloc[:40].std() > 0.5  # unseen categories still scored
    assert (good["lower"] <= good["predicted_points"]).all()
    assert (good["predicted_points"] <= good["upper"]).all()
    assert (good["upper"] - good["lower"]).between(2, 8).all()
    assert scored.loc[40, ["predicted_points", "lower", "upper"]].isna().all()
    assert scored.loc[40, "reject_reason"] == "description missing"


def test_file_without_index_column_gets_row_numbers(tmp_path, client, model_path, inventory):
    src = tmp_path / "noindex.csv"
    inventory.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    predict(model_path, src, out, blocksize="40KB")
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == list(range(300))


def test_cli_predict(tmp_path, model_path, inventory):
    src = tmp_path / "inventory.csv"
    inventory.head(50).to_csv(src)
    out = tmp_path / "pred.csv"
    result = run_cli("predict", "--model", str(model_path), "--input", str(src),
                     "--output", str(out))
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["id", "predicted_points", "lower", "upper", "reject_reason"]
    assert scored["id"].tolist() == inventory.index[:50].tolist()
    assert scored["reject_reason"].notna().tolist() == [i == 40 for i in range(50)]
    assert scored.drop(index=40)["predicted_points"].between(80, 100).all()


def test_predict_is_deterministic(tmp_path, client, model_path, inventory):
    src = tmp_path / "inventory.csv"
    inventory.to_csv(src)
    predict(model_path, src, tmp_path / "a.csv")
    predict(model_path, src, tmp_path / "b.csv", blocksize="30KB")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def _untidy(df: pd.DataFrame, case: str) -> pd.DataFrame:
    if case == "optional columns missing":
        return df.drop(columns=["designation", "province", "region_1", "region_2",
                                "taster_name", "taster_twitter_handle", "winery"])
    if case == "columns in another order":
        return df[df.columns[::-1]]
    if case == "extra columns":
        df = df.assign(shelf="A1", notes='internal, "do not print"')
        df.insert(3, "sommelier_score", "7")
        return df
    if case == "duplicated ids":
        return df.set_axis([1000 + i // 3 for i in range(len(df))])
    if case == "unseen critics":
        return df.assign(taster_name="Nobody Known", taster_twitter_handle="@nobody")
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["optional columns missing", "columns in another order",
                                  "extra columns", "duplicated ids", "unseen critics"])
def test_an_untidy_inventory_is_scored_with_its_ids(tmp_path, client, model_path, inventory,
                                                     case):
    tidy, untidy = tmp_path / "tidy.csv", tmp_path / "untidy.csv"
    inventory.to_csv(tidy)
    df = _untidy(inventory, case)
    df.to_csv(untidy)
    predict(model_path, tidy, tmp_path / "tidy-pred.csv")
    out = tmp_path / "pred.csv"
    result = predict(model_path, untidy, out, blocksize="40KB")
    scored = pd.read_csv(out, dtype={"id": str}, keep_default_na=False, na_values=[""])
    reference = pd.read_csv(tmp_path / "tidy-pred.csv", keep_default_na=False, na_values=[""])
    assert result == {"rows": 300, "rejected": 1}
    assert scored["id"].tolist() == [str(i) for i in df.index]  # as written, in order
    assert scored.loc[40, "reject_reason"] == "description missing"
    assert scored.loc[40, ["predicted_points", "lower", "upper"]].isna().all()
    good = scored.drop(index=40)
    assert good["predicted_points"].between(80, 100).all()
    assert (good["lower"] <= good["predicted_points"]).all()
    assert (good["predicted_points"] <= good["upper"]).all()
    same = reference["predicted_points"].equals(scored["predicted_points"])
    # What the model reads is the same whatever the order or the extra columns; the
    # missing columns and the unknown critic are information it no longer has.
    assert same == (case in ("columns in another order", "extra columns", "duplicated ids"))
    assert sheet_path(out).is_file()


def test_an_inventory_without_description_names_the_column(tmp_path, client, model_path,
                                                            inventory):
    src = tmp_path / "nodesc.csv"
    inventory.drop(columns="description").to_csv(src)
    out = tmp_path / "pred.csv"
    with pytest.raises(SchemaError, match=r"missing required column\(s\) 'description'"):
        predict(model_path, src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodesc.csv"]
