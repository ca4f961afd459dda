"""A second reference: the same job in Apache Spark MLlib (``local[2]``), for comparison only.

The same CSV is read by Spark's CSV source (one string column per field, not
``multiLine``: the synthetic files have no line breaks inside fields, and a
``multiLine`` read is not split and so runs on one core), cleaned with Spark SQL
expressions that mirror :func:`pipeline.cleaning.clean_partition`, and split by
the pipeline's own hash: a ``pandas_udf`` calls :func:`pipeline.splitting.split_bucket`
on the cleaned descriptions, so every row lands in the same split as in the
pipeline.  The features are those of :class:`pipeline.features.FeatureSpec`: the
same tokens (words and bigrams of the lower-cased description and title, the
character 4-grams within words, the ``column=value`` category tokens, the
price and length bands, the six numeric features scaled by the training
split's mean and standard deviation), the same hash space of each block, the
same l2 normalisation of the text blocks and the same block weights.  The
hash function is Spark's (MurmurHash3 with Spark's seed, on UTF-8 bytes), not
scikit-learn's, so a token lands in another column than in the pipeline: the
same feature *space*, not the same columns.

The model is ``pyspark.ml.regression.LinearRegression`` fitted by L-BFGS to the
L2-regularised least squares objective that ``SGD_PARAMS`` names (``alpha``
times a half squared norm); Spark scales its ``regParam`` by the standard
deviation of the label, so ``regParam = alpha * std(y)`` is the same penalty.
L-BFGS makes ``maxIter`` iterations on that objective (:data:`DEFAULT_MAX_ITER`,
picked on the validation split, or ``--epochs``; fewer if it converges), where
the pipeline's averaged SGD makes a few passes, so the two models are close but
not the same.  Predictions are clipped to 80-100 and scored by
:func:`pipeline.metrics.regression_metrics`, as in ``benchmarks/reference.py``.
The assembled feature vector carries its width alone as metadata, not
VectorAssembler's one attribute per column (see :func:`_unnamed`).

Spark is lazy, so each stage ends by persisting its result (memory, then
disk) and counting it (``clean`` and ``split`` count by reject reason and by
split), which runs the stage's work then and there; the stage before it is then
unpersisted.  ``fit`` runs its own jobs (LinearRegression summarises the
columns, blockifies and caches the training rows itself, and scores them for its
training summary once fitted); ``score_test`` hashes the test rows, predicts
them and collects the predictions.  ``import_seconds`` includes starting the
SparkSession (the JVM, a child process of this one).

Run as ``python -m benchmarks.spark_reference --csv FILE --out result.json`` in its
own process (needs ``pip install -c requirements.lock -e '.[spark]'`` and Java 17).
"""

from __future__ import annotations

import argparse
import csv as csv_module
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
from pyspark import StorageLevel  # noqa: E402
from pyspark.ml.feature import (  # noqa: E402
    ElementwiseProduct,
    FeatureHasher,
    HashingTF,
    NGram,
    Normalizer,
    RegexTokenizer,
    VectorAssembler,
)
from pyspark.ml.linalg import DenseVector  # noqa: E402
from pyspark.ml.regression import LinearRegression  # noqa: E402
from pyspark.sql import Column, DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402, N812
from pyspark.sql.types import StringType, StructField, StructType  # noqa: E402

from benchmarks.common import code_fingerprint  # noqa: E402
from benchmarks.monitor import MB, _hwm_bytes  # noqa: E402
from pipeline.cleaning import INDEX_ALIASES, VINTAGE_MAX, VINTAGE_MIN  # noqa: E402
from pipeline.features import NUMERIC_FEATURES, FeatureSpec, NumericStats  # noqa: E402
from pipeline.metrics import regression_metrics  # noqa: E402
from pipeline.model import clip_points  # noqa: E402
from pipeline.schema import (  # noqa: E402
    CATEGORY_COLUMNS,
    ID_COLUMN,
    INPUT_COLUMNS,
    POINTS_MAX,
    POINTS_MIN,
    PRICE_MAX,
    STRING_COLUMNS,
    TARGET,
)
from pipeline.sgd import SGD_PARAMS  # noqa: E402
from pipeline.splitting import SPLIT_EDGES, split_bucket  # noqa: E402

#: L-BFGS iterations when ``--epochs`` is not given (each is one or more passes over the
#: training rows).  Picked on the validation split of the 100k synthetic file: MAE 1.461
#: after 10 iterations, 1.434 after 20, 1.436 after 30, 1.440 after 50 (the penalised
#: optimum overfits a little), and each iteration costs about a second there.
DEFAULT_MAX_ITER = 20

# pyspark 4.3 warns that it "does not yet fully support pandas >= 3.0.0"; what is used
# of it here (a pandas_udf of strings to integers, toPandas of two double columns) is
# checked against the pipeline by tests/test_spark_reference.py.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)

#: L-BFGS convergence tolerance (Spark's default).
TOL = 1e-6

#: Python's ``\w`` in Java: letters, numbers, underscore.  Java's own ``(?U)\w`` also takes
#: the combining marks (so an NFD accent would join a word it splits in Python);
#: ``tests/test_spark_reference.py`` checks this class against ``re``'s ``\w`` on every code
#: point that Java's Unicode tables assign.
WORD_CHAR = r"[\p{L}\p{N}_]"

#: Word tokens: scikit-learn's default ``token_pattern`` ``(?u)\b\w\w+\b``, i.e. every
#: maximal run of two or more word characters.
TOKEN_PATTERN = WORD_CHAR + "{2,}"

#: The vintage year, as :data:`pipeline.cleaning._YEAR` (``\b`` spelt out with WORD_CHAR).
YEAR_PATTERN = rf"(?<!{WORD_CHAR})((?:19|20)\p{{Nd}}{{2}})(?!{WORD_CHAR})"

#: Column of a malformed CSV line (wrong number of fields), Spark's PERMISSIVE mode.
CORRUPT = "_corrupt_record"

#: Why a row was set aside (the pipeline's ``reject_reason``).
REASON = "reject_reason"


#: A run of whitespace as Python's ``str.split()`` sees it: Unicode White_Space plus
#: U+001C-U+001F, which Python counts as whitespace and Java's ``(?U)\s`` does not
#: (``tests/test_spark_reference.py`` checks every code point against ``str.isspace``).
WHITESPACE = r"(?U)[\s\x{1C}-\x{1F}]+"


def spark_session(master: str, driver_memory: str, work_dir: Path,
                  shuffle_partitions: int = 4) -> tuple[SparkSession, dict[str, str]]:
    """Start a SparkSession whose JVM is a child of this process.

    pyspark's own launcher runs ``spark-submit`` as a child process, so the
    harness's memory polling of this process tree sees the JVM and the Python
    workers it forks.

    Parameters
    ----------
    master : str
        E.g. ``local[2]``.
    driver_memory : str
        ``spark.driver.memory`` (the JVM's heap; in local mode it holds the executors).
    work_dir : pathlib.Path
        Spark's scratch (``spark.local.dir``), the JVM's ``java.io.tmpdir`` and the
        SQL warehouse go under it.
    shuffle_partitions : int, default 4

    Returns
    -------
    spark : pyspark.sql.SparkSession
    settings : dict
        The settings given to Spark.
    """
    for sub in ("local", "tmp", "warehouse"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    # The Python workers run this interpreter (and so this venv), whatever is on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    settings = {
        "spark.master": master,
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.eventLog.enabled": "false",
        "spark.local.dir": str(work_dir / "local"),
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={work_dir / 'tmp'}",
        "spark.sql.warehouse.dir": str(work_dir / "warehouse"),
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    builder = SparkSession.builder.appName("wine-pipeline-spark-reference")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark, settings


def _materialise(df: DataFrame) -> tuple[DataFrame, int]:
    """Persist ``df`` (memory, then disk) and count it, so its work happens now."""
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    return df, df.count()


def _header(csv: Path) -> list[str]:
    with open(csv, encoding="utf-8", errors="replace", newline="") as fh:
        return next(csv_module.reader(fh))


def read_raw(spark: SparkSession, csv: Path) -> DataFrame:
    """The CSV as strings, one column per field of its header, like ``dtype="object"``.

    The index column (unnamed in the source) is called ``id``; a line with the wrong
    number of fields keeps its text in ``_corrupt_record``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    csv : pathlib.Path

    Returns
    -------
    pyspark.sql.DataFrame
    """
    names = [ID_COLUMN if name in INDEX_ALIASES else name for name in _header(csv)]
    schema = StructType([StructField(n, StringType()) for n in names]
                        + [StructField(CORRUPT, StringType())])
    return spark.read.csv(str(csv), schema=schema, header=True, multiLine=False, quote='"',
                          escape='"', encoding="UTF-8", mode="PERMISSIVE",
                          columnNameOfCorruptRecord=CORRUPT)


def _tidy(col: Column) -> Column:
    """``" ".join(v.split())``, with None for what is left empty."""
    text = F.trim(F.regexp_replace(col, WHITESPACE, " "))
    return F.when(text != "", text)


def _number(text: Column) -> Column:
    """``pd.to_numeric(errors="coerce")`` of a tidied string: NULL when not a number."""
    value = text.try_cast("double")
    return F.when(~F.isnan(value), value)


def clean(raw: DataFrame) -> DataFrame:
    """Types and whitespace as :func:`pipeline.cleaning.clean_partition`, with a reason column.

    Parameters
    ----------
    raw : pyspark.sql.DataFrame
        Output of :func:`read_raw`.

    Returns
    -------
    pyspark.sql.DataFrame
        ``id``, the input columns, ``vintage`` and ``reject_reason`` (NULL for usable
        rows; the first reason found otherwise, in clean_partition's order).
    """
    present = set(raw.columns)
    strings = {c: _tidy(F.col(c)) if c in present else F.lit(None).cast("string")
               for c in STRING_COLUMNS}
    price_text = _tidy(F.col("price")) if "price" in present else F.lit(None).cast("string")
    points_text = _tidy(F.col(TARGET)) if TARGET in present else F.lit(None).cast("string")
    price, points = _number(price_text), _number(points_text)
    if ID_COLUMN in present:
        ids = _number(_tidy(F.col(ID_COLUMN)))
    else:  # pragma: no cover - the synthetic files have their index column
        ids = F.monotonically_increasing_id().cast("double")
    reasons = [
        (F.col(CORRUPT).isNotNull(), "malformed CSV line"),
        (ids.isNull(), "id not an integer"),
        (strings["description"].isNull(), "description missing"),
        (price.isNull() & price_text.isNotNull(), "price not a number"),
        ((price < 0) | (price > PRICE_MAX), f"price outside 0-{PRICE_MAX:g}"),
        (points.isNull(), "points missing or not a number"),
        ((points < POINTS_MIN) | (points > POINTS_MAX),
         f"points outside {POINTS_MIN}-{POINTS_MAX}"),
    ]
    reason = F.coalesce(*[F.when(cond, F.lit(why)) for cond, why in reasons])
    year = _number(F.regexp_extract(F.coalesce(strings["title"], F.lit("")), YEAR_PATTERN, 1))
    vintage = F.when((year >= VINTAGE_MIN) & (year <= VINTAGE_MAX), year)
    columns = [ids.cast("long").alias(ID_COLUMN)]
    for col in INPUT_COLUMNS:
        value = {TARGET: points, "price": price}.get(col, strings.get(col))
        columns.append(value.alias(col))
    return raw.select(*columns, vintage.alias("vintage"), reason.alias(REASON))


def _bucket(description: pd.Series) -> pd.Series:
    return pd.Series(split_bucket(description), index=description.index)


def with_split(clean_rows: DataFrame) -> DataFrame:
    """Add ``split`` (train/valid/test) from the pipeline's own :func:`split_bucket`.

    Parameters
    ----------
    clean_rows : pyspark.sql.DataFrame
        Usable rows of :func:`clean`.

    Returns
    -------
    pyspark.sql.DataFrame
    """
    bucket = F.pandas_udf(_bucket, "long")(F.col("description"))
    split = (F.when(bucket < SPLIT_EDGES["train"], "train")
             .when(bucket < SPLIT_EDGES["valid"], "valid").otherwise("test"))
    return clean_rows.withColumn("split", split)


#: 4-character windows of a text whose words are padded by a space each and set apart
#: by two: those whose two middle characters are not spaces lie within one padded word.
_WINDOW = r"(?s)(?=(.[^ ][^ ].))"

#: A one-letter word, padded: scikit-learn's ``char_wb`` keeps it whole (3 characters).
_SHORT_WORD = r"(?s)(?=( [^ ] ))"


def _char_4grams(text: Column) -> Column:
    """:func:`benchmarks.sklearn_features.char_4grams` in Spark SQL: each `` word ``'s 4-grams.

    The text is tidied already (words set apart by single spaces), so doubling the
    spaces and padding the ends pads every word by a space of its own; two regular
    expressions then pick the windows that lie within a padded word, and the padded
    words too short for a window.  The order of the grams differs from
    char_4grams' (word by word), which a term-frequency vector does not see.
    """
    padded = F.concat(F.lit(" "), F.regexp_replace(F.lower(text), " ", "  "), F.lit(" "))
    return F.concat(F.regexp_extract_all(padded, F.lit(_WINDOW), 1),
                    F.regexp_extract_all(padded, F.lit(_SHORT_WORD), 1))


def token_columns(df: DataFrame) -> DataFrame:
    """The tokens of :class:`FeatureSpec` per row, and the raw numeric features.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Cleaned rows.

    Returns
    -------
    pyspark.sql.DataFrame
        ``desc_terms`` (words and bigrams), ``desc_chars`` (4-grams), ``title_terms``,
        the category columns, ``price_band``, ``length_band``, ``taster_price`` and
        :data:`pipeline.features.NUMERIC_FEATURES`, besides ``points``.
    """
    desc = F.coalesce(F.col("description"), F.lit(""))
    title = F.coalesce(F.col("title"), F.lit(""))
    words = F.when(desc == "", 0).otherwise(F.size(F.split(desc, " "))).cast("double")
    price = F.col("price")
    log_price = F.when(price.isNotNull(), F.log1p(F.greatest(price, F.lit(0.0))))
    price_band = F.when(price.isNull(), F.lit(-1)).otherwise(
        F.floor(log_price * 4)).cast("int").cast("string")
    df = df.select(
        TARGET, *CATEGORY_COLUMNS,
        desc.alias("desc_text"), title.alias("title_text"),
        _char_4grams(desc).alias("desc_chars"),
        price_band.alias("price_band"),
        F.floor(F.log1p(words) * 4).cast("int").cast("string").alias("length_band"),
        F.concat(F.coalesce(F.col("taster_name"), F.lit("none")), F.lit("|"),
                 price_band).alias("taster_price"),
        log_price.alias("log_price"),
        (log_price * log_price).alias("log_price_sq"),
        price.isNull().cast("double").alias("price_missing"),
        F.col("vintage").alias("vintage"),
        F.col("vintage").isNull().cast("double").alias("vintage_missing"),
        F.log1p(words).alias("log_description_words"),
    )
    for name in ("desc", "title"):
        df = RegexTokenizer(inputCol=f"{name}_text", outputCol=f"{name}_words",
                            pattern=TOKEN_PATTERN, gaps=False, toLowercase=True).transform(df)
        df = NGram(n=2, inputCol=f"{name}_words", outputCol=f"{name}_bigrams").transform(df)
        df = df.withColumn(f"{name}_terms", F.concat(f"{name}_words", f"{name}_bigrams"))
    return df


def numeric_sums(train: DataFrame) -> tuple[NumericStats, float, float]:
    """:func:`pipeline.features.numeric_stats` of the training rows, and the label's mean and std.

    Parameters
    ----------
    train : pyspark.sql.DataFrame
        Output of :func:`token_columns` for the training split.

    Returns
    -------
    stats : NumericStats
    y_mean, y_std : float
        Of ``points``; the sample standard deviation, the one LinearRegression scales
        its ``regParam`` by.
    """
    aggs = []
    for name in NUMERIC_FEATURES:
        c = F.col(name)
        aggs += [F.count(c), F.sum(c), F.sum(c * c)]
    aggs += [F.mean(TARGET), F.stddev_samp(TARGET)]
    row = train.agg(*aggs).first()
    values = np.asarray([float(v or 0.0) for v in row[: 3 * len(NUMERIC_FEATURES)]])
    values = values.reshape(len(NUMERIC_FEATURES), 3)
    stats = NumericStats(count=values[:, 0], sum=values[:, 1], sumsq=values[:, 2])
    return stats, float(row[-2]), float(row[-1] or 0.0)


def _sized(col: str, size: int) -> Column:
    """``col`` with only its width as ML metadata (no per-feature attributes)."""
    return F.col(col).alias(col, metadata={"ml_attr": {"num_attrs": size}})


def _unnamed(col: str) -> Column:
    """``col`` with a zero width hint, so that VectorAssembler names none of its columns.

    VectorAssembler reads an input vector's width from its metadata only to write one
    named attribute per column into the output's metadata (2.7 million of them here, tens
    of megabytes of JSON analysed with every plan and shipped with every job); the
    assembled vector itself takes each input's actual size.
    """
    return _sized(col, 0)


def features(tokens: DataFrame, spec: FeatureSpec) -> DataFrame:
    """Hash the token columns into one sparse ``features`` vector, as ``spec.transform``.

    Blocks in FeatureSpec's order: description words + bigrams (l2), character
    4-grams (l2, ``char_weight``), title words + bigrams (l2, ``title_weight``),
    ``column=value`` categories (``category_weight``), bands (``bin_weight``), then
    the numeric features filled with the training mean, standardised and weighted.

    Parameters
    ----------
    tokens : pyspark.sql.DataFrame
        Output of :func:`token_columns`.
    spec : pipeline.features.FeatureSpec
        Hash sizes, weights and the numeric scaling.

    Returns
    -------
    pyspark.sql.DataFrame
        ``points`` and ``features``; the vector carries compact metadata (its width
        only), not VectorAssembler's one attribute per column (see :func:`_unnamed`).
    """
    df = tokens
    blocks = [  # (output, size, weight)
        ("desc_vec", spec.text_features, 1.0),
        ("char_vec", spec.char_features, spec.char_weight),
        ("title_vec", spec.title_features, spec.title_weight),
        ("category_vec", spec.category_features, spec.category_weight),
        ("bin_vec", spec.bin_features, spec.bin_weight),
    ]
    for source, out, size in (("desc_terms", "desc_tf", spec.text_features),
                              ("desc_chars", "char_tf", spec.char_features),
                              ("title_terms", "title_tf", spec.title_features)):
        df = HashingTF(numFeatures=size, inputCol=source, outputCol=out).transform(df)
        df = Normalizer(p=2.0, inputCol=out, outputCol=out.replace("_tf", "_l2")).transform(df)
    df = FeatureHasher(numFeatures=spec.category_features, inputCols=list(CATEGORY_COLUMNS),
                       outputCol="category_raw").transform(df)
    df = FeatureHasher(numFeatures=spec.bin_features,
                       inputCols=["price_band", "length_band", "taster_price"],
                       outputCol="bin_raw").transform(df)
    sources = {"desc_vec": "desc_l2", "char_vec": "char_l2", "title_vec": "title_l2",
               "category_vec": "category_raw", "bin_vec": "bin_raw"}
    for out, size, weight in blocks:
        if weight == 1.0:
            df = df.withColumnRenamed(sources[out], out)
        else:
            df = ElementwiseProduct(scalingVec=DenseVector(np.full(size, weight)),
                                    inputCol=sources[out], outputCol=out).transform(df)
    mean, std = spec.numeric_mean_, spec.numeric_std_
    numeric = [((F.coalesce(F.col(n), F.lit(float(m))) - float(m)) / float(s)
                * spec.numeric_weight).alias(f"{n}_scaled")
               for n, m, s in zip(NUMERIC_FEATURES, mean, std, strict=True)]
    df = df.select(TARGET, *[_unnamed(out) for out, _, _ in blocks], *numeric)
    inputs = [out for out, _, _ in blocks] + [f"{n}_scaled" for n in NUMERIC_FEATURES]
    df = VectorAssembler(inputCols=inputs, outputCol="assembled").transform(df)
    return df.select(TARGET, F.col("assembled").alias(
        "features", metadata={"ml_attr": {"num_attrs": spec.n_features}}))


def run_spark_reference(csv: Path, seed: int = 0, epochs: int | None = None,
                        master: str = "local[2]", driver_memory: str = "4g",
                        work_dir: Path | None = None) -> dict:
    """Read, clean, split, hash, fit and score ``csv`` with Spark.

    Parameters
    ----------
    csv : pathlib.Path
    seed : int, default 0
        Recorded only: L-BFGS from zero coefficients is deterministic.
    epochs : int, optional
        L-BFGS ``maxIter`` (default :data:`DEFAULT_MAX_ITER`).
    master, driver_memory : str
        Spark master URL and driver (JVM heap) memory.
    work_dir : pathlib.Path, optional
        Spark's scratch; a temporary directory, removed at the end, by default.

    Returns
    -------
    dict
        Seconds per stage, rows, test metrics, the Spark settings.
    """
    own_dir = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="spark-reference-")) if own_dir else Path(work_dir)
    spark, settings = spark_session(master, driver_memory, work)
    t_session = time.perf_counter()
    try:
        result = _run(spark, csv, epochs)
        result.update(memory_peaks())
    finally:
        spark.stop()
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
    result.update({
        "import_seconds": round(t_session - T_START, 3),
        "seed": seed,
        "spark_version": spark.version,
        "master": master,
        "spark_settings": settings,
        "work_dir": None if own_dir else str(work),
        "code": code_fingerprint(),
    })
    return result


def memory_peaks() -> dict:
    """The kernel's RSS high-water marks (``VmHWM``) of this process and of its JVM.

    Returns
    -------
    dict
        ``driver_peak_rss_mb``, and ``jvm_pid`` and ``jvm_peak_rss_mb`` of the JVM child
        (pyspark starts it through ``spark-submit``, a shell script that execs it, so
        the harness first sees that process as ``bash``).
    """
    me = psutil.Process()
    out: dict = {"driver_peak_rss_mb": round(_hwm_bytes(me.pid) / MB, 1)}
    for child in me.children():
        try:
            if child.name() == "java":
                out.update(jvm_pid=child.pid,
                           jvm_peak_rss_mb=round(_hwm_bytes(child.pid) / MB, 1))
        except psutil.Error:
            continue
    return out


def _run(spark: SparkSession, csv: Path, epochs: int | None) -> dict:
    stages: dict[str, float] = {}
    started = time.time()
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages[name] = round(now - t, 3)
        t = now

    raw, n_input = _materialise(read_raw(spark, csv))
    lap("read_csv")
    typed = clean(raw).persist(StorageLevel.MEMORY_AND_DISK)
    reasons = {r[REASON]: r["count"] for r in typed.groupBy(REASON).count().collect()}
    n_rejected = sum(n for why, n in reasons.items() if why is not None)
    raw.unpersist()
    lap("clean")
    split, _ = _materialise(with_split(typed.filter(F.col(REASON).isNull()).drop(REASON)))
    counts = {r["split"]: r["count"] for r in split.groupBy("split").count().collect()}
    typed.unpersist()
    lap("split")

    train_tokens = token_columns(split.filter(F.col("split") == "train"))
    sums, y_mean, y_std = numeric_sums(train_tokens)
    spec = FeatureSpec().fit_stats(sums)
    train, train_rows = _materialise(features(train_tokens, spec))
    lap("features")

    max_iter = epochs or DEFAULT_MAX_ITER
    reg_param = SGD_PARAMS["alpha"] * y_std
    lr = LinearRegression(featuresCol="features", labelCol=TARGET, predictionCol="prediction",
                          solver="l-bfgs", loss="squaredError", regParam=reg_param,
                          elasticNetParam=0.0, standardization=False, fitIntercept=True,
                          maxIter=max_iter, tol=TOL)
    model = lr.fit(train)
    iterations = model.summary.totalIterations
    train.unpersist()
    lap("fit")

    test = features(token_columns(split.filter(F.col("split") == "test")), spec)
    scored = model.transform(test).select(TARGET, "prediction").toPandas()
    y_test = scored[TARGET].to_numpy(dtype="float64")
    test_metrics = regression_metrics(
        y_test, clip_points(scored["prediction"].to_numpy(dtype="float64")))
    split.unpersist()
    lap("score_test")

    return {
        "rows": n_input,
        "rejected": n_rejected,
        "reject_reasons": {k: v for k, v in sorted(reasons.items()) if k is not None},
        "train_rows": train_rows,
        "valid_rows": counts.get("valid", 0),
        "test_rows": len(y_test),
        "epochs": max_iter,
        "lbfgs_iterations": iterations,
        "model": (f"pyspark.ml LinearRegression(solver='l-bfgs', loss='squaredError', "
                  f"regParam=alpha*std(y)={reg_param:.3g}, elasticNetParam=0, "
                  f"standardization=False, fitIntercept=True, maxIter={max_iter}, tol={TOL:g}) "
                  f"on FeatureSpec's hashed blocks with Spark's HashingTF/FeatureHasher "
                  f"({spec.n_features:,} columns); {iterations} L-BFGS iterations"),
        "sgd_params": SGD_PARAMS,
        "n_features": spec.n_features,
        "stages": stages,
        "seconds": round(sum(stages.values()), 3),
        "start": started,
        "stop": time.time(),
        "test_metrics": test_metrics,
        "mae": test_metrics["mae"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"L-BFGS maxIter (default {DEFAULT_MAX_ITER})")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Spark's scratch and spill directory (default: a temporary one)")
    args = parser.parse_args(argv)
    result = run_spark_reference(args.csv, seed=args.seed, epochs=args.epochs,
                                 master=args.master, driver_memory=args.driver_memory,
                                 work_dir=args.work_dir)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
