"""Text as a terminal shows it: untrusted text (card values, paths, names) can neither
forge lines, move the cursor, retitle the window nor reorder what is read."""

from __future__ import annotations


def visible(text: str) -> str:
    """`text` with control, format and bidirectional characters spelled as escapes
    (`\\n`, `\\x1b`, `\\u202e`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
