"""The Spark MLlib peer of the benchmark (``benchmarks/spark_reference.py``) on a small file.

Kept out of ``make test``: it runs only with ``WINE_TEST_SPARK=1``, pyspark
importable and ``java`` on PATH.  pyspark is the optional ``spark`` extra
(``pip install -c requirements.lock -e '.[spark]'``, and Java 17).  It takes a
few minutes: a JVM starts twice.

The peer is run as the harness runs it, in its own process, next to the pandas
reference on the same synthetic file; the cleaning, the split, the tokens and the
whitespace rule it rebuilds in Spark SQL are checked row by row against the
pipeline's own functions.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest

if os.environ.get("WINE_TEST_SPARK") != "1":
    pytest.skip("the Spark peer runs only with WINE_TEST_SPARK=1", allow_module_level=True)
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("java is not on PATH (the Spark peer needs Java 17)", allow_module_level=True)

from pyspark.sql import functions as F  # noqa: E402, N812
from sklearn.feature_extraction.text import HashingVectorizer  # noqa: E402

from benchmarks.sklearn_features import char_4grams  # noqa: E402
from benchmarks.spark_reference import (  # noqa: E402
    WHITESPACE,
    WORD_CHAR,
    clean,
    features,
    read_raw,
    spark_session,
    token_columns,
)
from conftest import ROOT  # noqa: E402
from pipeline.cleaning import REASON, clean_partition, id_column_of  # noqa: E402
from pipeline.features import (  # noqa: E402
    NUMERIC_FEATURES,
    FeatureSpec,
    bin_tokens,
    numeric_frame,
)
from synth import generate_csv  # noqa: E402

pytestmark = pytest.mark.slow

ROWS = 2000


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("spark-data") / "synthetic.csv"
    generate_csv(ROWS, 0, path)
    return path


def _run(module: str, csv, out, cwd, *extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", module, "--csv", str(csv), "--out", str(out),
                           *extra], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_spark_peer_agrees_with_the_reference(synthetic_csv, tmp_path):
    ref = _run("benchmarks.reference", synthetic_csv, tmp_path / "reference.json", tmp_path)
    spark = _run("benchmarks.spark_reference", synthetic_csv, tmp_path / "spark.json", tmp_path,
                 "--epochs", "10", "--work-dir", str(tmp_path / "spark-work"))
    for key in ("rows", "rejected", "train_rows", "valid_rows", "test_rows"):
        assert spark[key] == ref[key], key
    assert spark["rows"] == ROWS
    assert spark["test_metrics"]["n"] == ref["test_metrics"]["n"] == ref["test_rows"]
    assert list(spark["stages"]) == ["read_csv", "clean", "split", "features", "fit",
                                     "score_test"]
    assert all(s > 0 for s in spark["stages"].values())
    assert math.isclose(spark["seconds"], sum(spark["stages"].values()), abs_tol=0.01)
    assert spark["start"] < spark["stop"] and spark["import_seconds"] > 0
    assert math.isfinite(spark["mae"]) and spark["mae"] < 3
    assert spark["master"] == "local[2]" and spark["spark_version"].startswith("4.")
    assert spark["spark_settings"]["spark.ui.enabled"] == "false"
    assert spark["epochs"] == 10 and 0 < spark["lbfgs_iterations"] <= 10
    assert spark["n_features"] == 2**20 + 2**20 + 2**18 + 2**18 + 2**16 + len(NUMERIC_FEATURES)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    session, _ = spark_session("local[2]", "1g", tmp_path_factory.mktemp("spark-work"))
    yield session
    session.stop()


def test_character_classes_are_pythons(spark):
    """The whitespace and word characters of the Spark rules are Python's, code point by point.

    Whitespace exactly (``str.split``); word characters (``re``'s ``\\w``) on every code
    point that Java's Unicode tables assign: Java 17 knows Unicode 13, Python 3.11
    Unicode 14, whose new letters Java cannot class.
    """
    codes = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    frame = spark.createDataFrame(pd.DataFrame({"code": codes,
                                                "text": [chr(c) for c in codes]}))
    got = frame.select("code", F.col("text").rlike(rf"\A{WHITESPACE}\z").alias("space"),
                       F.col("text").rlike(rf"\A{WORD_CHAR}\z").alias("word")).toPandas()
    space = np.array([chr(c).isspace() for c in got["code"]])
    assert 20 < space.sum() < 40
    assert (got["space"].to_numpy() == space).all()
    word = np.array([re.fullmatch(r"\w", chr(c)) is not None for c in got["code"]])
    assert word.sum() > 100_000
    differ = got["code"].to_numpy()[got["word"].to_numpy() != word]
    character = spark.sparkContext._jvm.java.lang.Character
    assert len(differ) < 1000
    assert all(character.getType(int(c)) == character.UNASSIGNED for c in differ)


def _read(csv) -> pd.DataFrame:
    return pd.read_csv(csv, dtype="object", keep_default_na=False, na_values=[""],
                       encoding="utf-8", encoding_errors="replace")


def test_cleaning_and_tokens_match_the_pipeline(spark, synthetic_csv):
    want, _ = clean_partition(_read(synthetic_csv), require_points=True)
    want = want.set_index("id")
    got = clean(read_raw(spark, synthetic_csv)).filter(F.col(REASON).isNull()).drop(REASON)
    got = got.toPandas().set_index("id").loc[want.index]
    for col in want.columns:
        if col in ("points", "price", "vintage"):
            same = np.isclose(want[col].astype(float), got[col].astype(float), equal_nan=True)
        else:
            same = (want[col].fillna("\0").astype(str).to_numpy()
                    == got[col].fillna("\0").to_numpy())
        assert same.all(), col

    rows = want.reset_index()
    frame = spark.createDataFrame(rows.astype(object).where(rows.notna(), None))
    tokens = token_columns(frame).toPandas()
    words = HashingVectorizer(ngram_range=(1, 2)).build_analyzer()
    for i, row in rows.iterrows():
        assert Counter(tokens.at[i, "desc_terms"]) == Counter(words(row["description"]))
        assert Counter(tokens.at[i, "desc_chars"]) == Counter(char_4grams(row["description"]))
        title = row["title"] if isinstance(row["title"], str) else ""
        assert Counter(tokens.at[i, "title_terms"]) == Counter(words(title))
    bands = [[f"price_band={p}", f"length_band={n}", f"taster_price={t}"]
             for p, n, t in zip(tokens["price_band"], tokens["length_band"],
                                tokens["taster_price"], strict=True)]
    assert bands == bin_tokens(rows)
    numeric = numeric_frame(rows)
    for name in NUMERIC_FEATURES:
        assert np.allclose(numeric[name], tokens[name].astype(float), equal_nan=True), name

    # The assembled vector: FeatureSpec's width, blocks, l2 norms and weights.
    spec = FeatureSpec().fit(rows)
    blocks = spec.blocks()
    for row in features(token_columns(frame), spec).limit(20).collect():
        vector = row["features"]
        assert vector.size == spec.n_features
        norms = {}
        for name in ("description", "description_chars", "title", "category", "bins"):
            lo, hi = blocks[name]
            inside = (vector.indices >= lo) & (vector.indices < hi)
            norms[name] = float(np.linalg.norm(vector.values[inside]))
            if name in ("category", "bins"):
                weight = getattr(spec, f"{'bin' if name == 'bins' else name}_weight")
                assert np.allclose(np.round(vector.values[inside] / weight),
                                   vector.values[inside] / weight), name
        assert math.isclose(norms["description"], 1.0, rel_tol=1e-6)
        assert math.isclose(norms["description_chars"], spec.char_weight, rel_tol=1e-6)
        assert math.isclose(norms["title"], spec.title_weight, rel_tol=1e-6)


def test_rejects_match_the_pipeline(spark, tmp_path):
    """Unusable rows are set aside for the same first reason as clean_partition's."""
    header = ",country,description,designation,points,price,province,region_1,region_2," \
             "taster_name,taster_twitter_handle,title,variety,winery"
    lines = [
        '0,US,"Crisp\u00a0and  bright.",,88,20.0,,,,,,W 2015 X (Y),Red,W',
        "1,US,,,88,20.0,,,,,,W 2015 X (Y),Red,W",           # no description
        "2,US,  \u2003 ,,88,20.0,,,,,,W,Red,W",               # whitespace only
        "3,US,Fine.,,79,20.0,,,,,,W,Red,W",                  # points below 80
        "4,US,Fine.,,abc,20.0,,,,,,W,Red,W",                 # points not a number
        "5,US,Fine.,,,20.0,,,,,,W,Red,W",                    # points missing
        "6,US,Fine.,,90,cheap,,,,,,W,Red,W",                 # price not a number
        "7,US,Fine.,,90,-5,,,,,,W,Red,W",                    # negative price
        "x,US,Fine.,,90,5,,,,,,W,Red,W",                     # id not an integer
        "9,US,Fine.,,101,,,,,,,W 1850 1999,Red,W",           # points above 100
        "10,US, Fine \x1f wine. ,,90, 12 ,,,,,,W 1850 1999,Red,W",
    ]
    csv = tmp_path / "messy.csv"
    csv.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    want_clean, want_rejects = clean_partition(_read(csv), require_points=True)
    got = clean(read_raw(spark, csv)).toPandas()
    got_reasons = got.set_index(got["id"].fillna(-1).astype(int))[REASON]
    index = id_column_of(list(want_rejects.columns))
    want_ids = pd.to_numeric(want_rejects[index], errors="coerce").fillna(-1).astype(int)
    assert dict(zip(want_ids, want_rejects[REASON], strict=True)) == {
        i: r for i, r in got_reasons.items() if isinstance(r, str)}
    kept = got[got[REASON].isna()].set_index("id")
    assert list(kept.index) == list(want_clean["id"])
    assert list(kept["description"]) == list(want_clean["description"])
    assert list(kept["vintage"].fillna(0)) == list(want_clean["vintage"].fillna(0))
