"""Every tunable number of the pipeline in one place: hyperparameters, sizes and defaults.

The step modules and the CLI's defaults read them from here.  Hand-tuned
values were chosen on the validation split of the challenge sample (and,
for what depends on size, on synthetic data); benchmarks/results has the
measurements behind the size rules.
"""

from __future__ import annotations

# ------------------------------------------------------------------------ inputs and splits

#: Default partition size of CSV reads: big enough to amortise task overhead, small enough
#: for memory.
BLOCKSIZE = "32MB"

#: make-dataset fails when more than this share of the rows is unusable.
MAX_REJECT_SHARE = 0.05

#: Upper bounds of the review-hash buckets (0-99) of each split: 80 / 10 / 10.
SPLIT_EDGES = {"train": 80, "valid": 90, "test": 100}

#: Default random seed.
SEED = 0

# ----------------------------------------------------------------------------- linear model

#: SGD hyperparameters.
SGD_PARAMS = {
    "loss": "squared_error",
    "penalty": "l2",
    "alpha": 1e-5,
    "learning_rate": "constant",
    "eta0": 0.03,
    "average": True,
}

#: Passes scale with the data so that small sets get enough updates and big sets
#: no more than they need: about this many row updates in total, within bounds.
TARGET_ROW_UPDATES = 200_000
MIN_EPOCHS, MAX_EPOCHS = 3, 40

#: Folds of the cross-fitting that gives the GBM out-of-fold text scores: each fold
#: model learns from all but one fold, so K folds cost K - 1 extra passes' worth of
#: updates; from :data:`LARGE_ROWS` training rows on, fewer do as well.
N_FOLDS = 5
N_FOLDS_LARGE = 2
LARGE_ROWS = 100_000

#: Bytes a hashed training row takes in a worker's memory: its sparse features (about 250
#: non-zeros of a float32 value and an int32 index each) and its dense GBM features.  What
#: the size of a split's hashed blocks is estimated from.
HASHED_ROW_BYTES = 2_100

#: Share of the workers' summed memory limits the hashed training blocks may take and still
#: be kept for several passes; the rest is the models', the hashing's and Dask's.  Above
#: it, the rows are streamed instead (:func:`pipeline.sgd.fits_in_memory`).
HASHED_MEMORY_SHARE = 0.4

#: Blocks each worker hashes per window of the streaming schedule; two windows are in
#: memory at once, so this bounds a worker's hashed rows.
STREAM_BLOCKS_PER_WORKER = 2

# ------------------------------------------------------------------------------------ GBM

#: LightGBM hyperparameters (trees and learning rate for up to :data:`SMALL_ROWS` rows;
#: see :func:`pipeline.gbm.boosting_plan`).
GBM_PARAMS = {
    "objective": "regression_l1",
    "n_estimators": 1000,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "cat_smooth": 20,
    "min_data_per_group": 30,
    "deterministic": True,
    "verbose": -1,
}

#: Most training rows the GBM learns from; above it, evenly spread rows of each block.
MAX_ROWS = 2_000_000

#: Up to this many rows, the trees and learning rate of :data:`GBM_PARAMS`.
SMALL_ROWS = 100_000

#: How fast the trees fall with the rows above :data:`SMALL_ROWS` (``rows ** -TREE_POWER``).
TREE_POWER = 0.8

#: Fewest trees on big data.
MIN_TREES = 150

#: Shares of the linear model tried in the blend of the stacked model.
TEXT_WEIGHTS = tuple(round(i / 10, 2) for i in range(11))

# ------------------------------------------------------------------------------ validation

#: Most validation rows scored to compare the models and place the interval (evenly
#: spread rows): enough to know the coverage and the MAE well; more costs hashing time.
VALID_SCORE_ROWS = 20_000

# ------------------------------------------------------------------------- the 80% range

#: Share of wines the range is meant to cover.
INTERVAL_COVERAGE = 0.8

#: Edges of the price bands the range is checked on (and the report shows), in the
#: data's currency.
PRICE_BAND_EDGES: tuple[float, ...] = (0, 15, 25, 40, 60, 100, float("inf"))

#: A segment (price band, critic) is checked from this many rows on.
SEGMENT_MIN_ROWS = 30

#: Coverage every checked segment must reach, inclusive.
SEGMENT_COVERAGE = (0.70, 0.90)

#: Folds of the validation rows the spread models are cross-fitted over.
SPREAD_FOLDS = 5

#: Fewest validation rows to try the adaptive range on (a spread model per fold needs some).
MIN_ADAPTIVE_ROWS = 500

#: Smallest spread, as a share of the median absolute residual: a wine the spread model
#: finds easy still gets a range, not a point.
SPREAD_FLOOR = 0.3

#: The spread model: small additive trees (depth-one stumps), so that a few hundred
#: validation rows give a smooth, not a memorised, spread.
SPREAD_PARAMS = {
    "objective": "regression",
    "num_leaves": 2,
    "min_data_in_leaf": 40,
    "learning_rate": 0.1,
    "lambda_l2": 1.0,
    "cat_smooth": 20,
    "min_data_per_group": 30,
    "deterministic": True,
    "verbose": -1,
}

#: Boosting rounds of the spread model.
SPREAD_ROUNDS = 150

#: Powers of the spread tried, most adaptive first.
POWERS = (1.0, 0.75, 0.5, 0.25)

#: How much wider on average than the constant range an adaptive one may be.
WIDTH_TOLERANCE = 0.02

# --------------------------------------------------------------------- evaluation, folds

#: Most test rows kept for the report's figures.
REPORT_SAMPLE_ROWS = 100_000

#: Folds of ``cross-validate``.
CV_FOLDS = 5

#: In cross-validation, rows of the non-test folds whose bucket is a multiple of this
#: are the fold's validation rows.
CV_VALID_EVERY = 8
