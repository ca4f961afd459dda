"""The input schema of wine reviews and the columns each step relies on."""

from __future__ import annotations

#: Name given to the CSV's unnamed first column (the review's index in the source).
ID_COLUMN = "id"

#: Target column.
TARGET = "points"

#: Columns of the source CSV after the index column, in file order.
INPUT_COLUMNS: tuple[str, ...] = (
    "country",
    "description",
    "designation",
    "points",
    "price",
    "province",
    "region_1",
    "region_2",
    "taster_name",
    "taster_twitter_handle",
    "title",
    "variety",
    "winery",
)

#: Free-text columns.
TEXT_COLUMNS: tuple[str, ...] = ("description", "title")

#: Categorical columns, hashed rather than one-hot encoded against a vocabulary.
CATEGORY_COLUMNS: tuple[str, ...] = (
    "country",
    "province",
    "region_1",
    "region_2",
    "variety",
    "winery",
    "taster_name",
    "designation",
)

#: String columns of a cleaned data set (everything but the numbers).
STRING_COLUMNS: tuple[str, ...] = tuple(
    c for c in INPUT_COLUMNS if c not in ("points", "price")
)

#: Columns a file must have to be scored; ``points`` is needed only to train and evaluate.
REQUIRED_FOR_SCORING: tuple[str, ...] = ("description", "title", "price", "country", "variety")

#: Columns a file must have to build a training data set.
REQUIRED_FOR_TRAINING: tuple[str, ...] = REQUIRED_FOR_SCORING + (TARGET,)

#: Valid range of the target, inclusive.
POINTS_MIN, POINTS_MAX = 80, 100

#: Prices above this are taken as data-entry errors (the dearest wine in the source is 3,300).
PRICE_MAX = 100_000.0

#: Directory of a data set that holds the rows set aside, with their reason.
REJECTS = "rejects"


class SchemaError(ValueError):
    """Raised when an input file lacks a column the step needs."""


def check_columns(
    columns: list[str] | tuple[str, ...], required: tuple[str, ...], source: str
) -> None:
    """Stop with a clear message when a required column is missing.

    Parameters
    ----------
    columns : sequence of str
        Column names found in the input.
    required : tuple of str
        Column names the step needs.
    source : str
        Where the columns came from, named in the error.

    Raises
    ------
    SchemaError
        Naming every missing column.
    """
    missing = [c for c in required if c not in columns]
    if missing:
        raise SchemaError(
            f"{source}: missing required column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(repr(c) for c in columns) or 'no columns'}"
        )
