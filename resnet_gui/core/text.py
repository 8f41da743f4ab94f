"""Text that reaches a person: file and class names shown safely on a terminal or in a table.

A file name or a class name (from a folder name, from a bundle someone sent) may hold control
characters: an escape sequence would then recolour, move or clear the user's terminal, a
carriage return would overwrite the line. :func:`printable` shows them escaped (``\\x1b``,
``\\r``), the way Python's ``repr`` would, and leaves every other character, accented letters
included, as it is. Machine output (JSON) keeps the exact text instead. No Qt, no torch.
"""

from __future__ import annotations

import os
import unicodedata

__all__ = ["printable", "printable_path"]


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte of a non-UTF-8 file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}"


def _needs_escape(char: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cs: lone surrogates; Zl/Zp: line/paragraph separators;
    # bidirectional overrides (Cf U+202A-202E, U+2066-2069) reorder what the user reads.
    code = ord(char)
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or 0x202A <= code <= 0x202E or (
        0x2066 <= code <= 0x2069
    )


def printable(text: str) -> str:
    """``text`` with control characters, lone surrogates and bidi overrides written as escapes."""
    if text.isprintable():
        return text
    return "".join(_escape(char) if _needs_escape(char) else char for char in text)


def printable_path(path: str | os.PathLike[str]) -> str:
    """A path as :func:`printable` text (non-UTF-8 bytes of the name shown as ``\\xNN``)."""
    return printable(os.fspath(path))
