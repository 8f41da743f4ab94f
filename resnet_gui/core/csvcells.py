"""CSV cells that a spreadsheet shows as text and that read back exactly.

A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a line break is run as a formula by
spreadsheets (CSV injection), and the text in our tables comes from others: file names, class
names from a bundle or from folder names, error messages. Such a cell gets a leading ``'`` (the
OWASP advice), and so does a cell that already begins with ``'``, so that stripping one leading
``'`` on reading gives back exactly what was written. Fields holding a comma, a quote, ``\\r`` or
``\\n`` are quoted (Python's csv writer leaves a ``\\r`` unquoted when lines end in ``\\n``, and a
reader then splits the record there). No Qt, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FORMULA_STARTS", "csv_bytes", "csv_line", "escape_csv_cell", "unescape_csv_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_ESCAPED_STARTS = (*FORMULA_STARTS, "'")
_NEEDS_QUOTES = (",", '"', "\r", "\n")


def escape_csv_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet runs; :func:`unescape_csv_cell` undoes it exactly."""
    return "'" + text if text.startswith(_ESCAPED_STARTS) else text


def unescape_csv_cell(text: str) -> str:
    """The text :func:`escape_csv_cell` was given."""
    return text[1:] if text.startswith("'") else text


def _field(cell: str | int) -> str:
    text = escape_csv_cell(cell) if isinstance(cell, str) else str(cell)
    if any(char in text for char in _NEEDS_QUOTES):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(cells: Iterable[str | int]) -> str:
    """One record ending in ``\\n``: text cells escaped, numbers (``int``) written as they are.

    Text we format ourselves (``f"{p:.6f}"``) never begins with a formula character, so passing it
    as text leaves it unchanged.
    """
    fields = [_field(cell) for cell in cells]
    if fields == [""]:
        fields = ['""']  # a lone empty field, not a blank line
    return ",".join(fields) + "\n"


def csv_bytes(text: str) -> bytes:
    """CSV text as UTF-8; the raw bytes of non-UTF-8 file names are written back as they were.

    Any other lone surrogate (possible in a class name from a bundle's JSON) has no bytes of its
    own and is written as a ``\\udXXX`` escape rather than failing the whole file.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b"".join(_char_bytes(char) for char in text)


def _char_bytes(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return char.encode("utf-8", "backslashreplace")
