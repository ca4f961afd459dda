"""Input files as they come: compressed, in another encoding, or not text at all.

A step that reads a CSV first asks :func:`prepare_input` for a plain-text file
in an ASCII-compatible encoding, which the record scan and pandas can read in
byte blocks.  Compressed files (gzip, bzip2, xz, zip with one CSV inside) and
UTF-16/32 text are decoded once into a scratch file; binary files (images,
spreadsheets, databases) are refused with a short message that says what they
look like.  Only the standard library is needed here (the download image has
no Dask); URLs are opened through fsspec when it is installed.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import logging
import lzma
import os
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from pipeline.schema import SchemaError

log = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024

#: Leading bytes of compressed formats, and what decompresses them.
_COMPRESSED = {
    b"\x1f\x8b": ("gzip", gzip.open),
    b"BZh": ("bzip2", bz2.open),
    b"\xfd7zXZ\x00": ("xz", lzma.open),
}

#: Leading bytes of binary formats people mistake for CSV, and what to say.
_BINARY = {
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"PAR1": "a Parquet file",
    b"\x7fELF": "a program (ELF)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document (.xls): save it as CSV",
    b"SQLite format 3": "an SQLite database",
}

#: What :func:`sniff` calls the compressed formats it knows.
COMPRESSED_KINDS = ("gzip", "bzip2", "xz", "zip")

_UNICODE_BOMS = {
    codecs.BOM_UTF32_LE: "utf-32", codecs.BOM_UTF32_BE: "utf-32",
    codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16",
}


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a local path, or an fsspec URL (``s3://...``), for reading bytes."""
    text = str(path)
    if "://" in text:
        import fsspec

        return fsspec.open(text, "rb").open()
    return open(text, "rb")  # noqa: SIM115 - the caller closes it


def _exists_and_size(path: str | os.PathLike) -> int | None:
    text = str(path)
    if "://" in text:
        import fsspec

        fs, _, [p] = fsspec.get_fs_token_paths(text)
        return int(fs.size(p)) if fs.isfile(p) else None
    p = Path(text)
    return p.stat().st_size if p.is_file() else None


def _head(path: str | Path, n: int = SNIFF_BYTES) -> bytes:
    with open_binary(path) as fh:
        return fh.read(n)


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding, with a clear error for an unknown one.

    Parameters
    ----------
    encoding : str

    Returns
    -------
    str

    Raises
    ------
    SchemaError
    """
    try:
        return codecs.lookup(encoding).name
    except LookupError as err:
        raise SchemaError(f"unknown text encoding {encoding!r} (try utf-8, cp1252 or "
                          "latin-1)") from err


def _ascii_compatible(encoding: str) -> bool:
    # The record scan works on bytes: the CSV's special characters must be single bytes.
    try:
        return ',"\r\n \t;'.encode(encoding) == b',"\r\n \t;'
    except (UnicodeError, LookupError):
        return False


def sniff(path: str | Path) -> tuple[str, str | None]:
    """Tell what kind of file ``path`` is, from its first bytes.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    kind : str
        ``"text"``, ``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zip"``, ``"utf-16"``,
        ``"utf-32"`` or ``"binary"``.
    detail : str or None
        For ``"binary"``, what it looks like.
    """
    head = _head(path)
    for magic, (name, _) in _COMPRESSED.items():
        if head.startswith(magic):
            return name, None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip", None
    for bom, name in sorted(_UNICODE_BOMS.items(), key=lambda kv: -len(kv[0])):
        if head.startswith(bom):
            return name, None
    for magic, what in _BINARY.items():
        if head.startswith(magic):
            return "binary", what
    if b"\x00" in head:
        return "binary", "binary data (it has NUL bytes; if it is UTF-16 text without a " \
                         "byte-order mark, pass --encoding utf-16)"
    return "text", None


def _zip_member(path: str | Path) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    archive = zipfile.ZipFile(open_binary(path))
    names = [i for i in archive.infolist() if not i.is_dir()]
    if any(i.filename.startswith("xl/") for i in names):
        raise SchemaError(f"{path}: an Excel workbook (.xlsx), not a CSV: save it as CSV")
    csvs = [i for i in names if i.filename.lower().endswith((".csv", ".txt"))]
    picked = csvs if len(csvs) == 1 else names
    if len(picked) != 1:
        listed = ", ".join(i.filename for i in names[:10]) or "nothing"
        raise SchemaError(f"{path}: a zip archive must hold exactly one CSV file; it holds "
                          f"{listed}")
    return archive, picked[0]


def decompress_to(path: str | Path, kind: str, target: Path) -> None:
    """Write the decompressed content of ``path`` to ``target``.

    Parameters
    ----------
    path : str or pathlib.Path
        A compressed file.
    kind : str
        Its format, as :func:`sniff` names it.
    target : pathlib.Path

    Raises
    ------
    SchemaError
        When the data is damaged, truncated or empty, or a zip does not hold one CSV.
    """
    if kind == "zip":
        archive, member = _zip_member(path)
        source = archive.open(member)
    else:
        opener = next(o for name, o in _COMPRESSED.values() if name == kind)
        source = opener(open_binary(path))
    try:
        with source, target.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError, zlib.error) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise  # the disk, not the data
        raise SchemaError(f"{path}: the {kind} data is damaged or truncated "
                          f"({str(err)[:200]})") from err
    if target.stat().st_size == 0:
        raise SchemaError(f"{path}: the file is empty once decompressed")


def prepare_input(path: str | Path, encoding: str, scratch: Path) -> tuple[str, str]:
    """A plain-text, ASCII-compatible copy of ``path`` when it is not one already.

    Parameters
    ----------
    path : str or pathlib.Path
        The input as given.
    encoding : str
        Its text encoding (of the CSV inside, for a compressed file).
    scratch : pathlib.Path
        Directory for a decompressed or re-encoded copy (the caller removes it).

    Returns
    -------
    path : str
        The file to read: ``path`` itself, or the copy.
    encoding : str
        The encoding to read it with.

    Raises
    ------
    SchemaError
        When the file is absent, empty, binary or an archive without exactly one CSV.
    """
    encoding = check_encoding(encoding)
    given = path
    size = _exists_and_size(path)
    if size is None:
        raise SchemaError(f"{path}: no such file")
    if size == 0:
        raise SchemaError(f"{path}: the file is empty")
    kind, detail = sniff(path)
    if kind in COMPRESSED_KINDS:
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / "input.csv"
        log.info("%s is %s-compressed: decompressing it once to %s, to read it in parallel "
                 "blocks", path, kind, target)
        decompress_to(path, kind, target)
        kind, detail = sniff(target)
        if kind in COMPRESSED_KINDS:
            raise SchemaError(f"{given}: compressed twice; decompress it once yourself")
        path = target
    if not _ascii_compatible(encoding):
        return _transcode(path, encoding, scratch)
    if kind in ("utf-16", "utf-32"):
        return _transcode(path, kind, scratch)
    if kind == "binary":
        raise SchemaError(f"{given}: not a CSV file: it looks like {detail}")
    return str(path), encoding


def _transcode(path: str | Path, encoding: str, scratch: Path) -> tuple[str, str]:
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "input-utf8.csv"
    log.info("%s is %s text: re-encoding it once to UTF-8 at %s", path, encoding, target)
    with open_binary(path) as raw, target.open("wb") as out:
        reader = codecs.getreader(encoding)(raw, errors="replace")
        while chunk := reader.read(1 << 20):
            out.write(chunk.encode("utf-8"))
    return str(target), "utf-8"


def undecodable_hint(path: str | Path, encoding: str) -> str:
    """Which encoding to suggest for a file that is not valid in ``encoding``.

    Reads the file up to its first invalid bytes and tries the usual suspects there.

    Parameters
    ----------
    path : str or pathlib.Path
    encoding : str

    Returns
    -------
    str
        E.g. ``"pass --encoding cp1252"``.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    with open_binary(path) as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                for guess in ("cp1252", "latin-1"):
                    if guess != encoding:
                        try:
                            chunk.decode(guess)
                            return f"pass --encoding {guess}"
                        except UnicodeDecodeError:
                            continue
                break
    return "pass --encoding with the file's encoding"


