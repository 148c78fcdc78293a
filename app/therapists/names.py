"""Name keys for search and sorting: case- and accent-insensitive, ASCII only."""

import re
import unicodedata

# The key columns' size, as the names' own: decomposing can lengthen a name
# ("ﬀ" is "ff"), and a key is a name's start for sorting and prefix search.
NAME_KEY_LENGTH = 100


def name_key(name: str | None) -> str:
    """`García-López` → `garcia-lopez`; what `q` and `sort=name` compare."""
    if not name:
        return ""
    if name.isascii() and name.isprintable():
        # Most names: nothing to decompose or drop, and no whitespace but spaces.
        return " ".join(name.lower().split())[:NAME_KEY_LENGTH]
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    printable = "".join(char for char in ascii_name if char.isprintable() or char.isspace())
    return re.sub(r"\s+", " ", printable.lower()).strip()[:NAME_KEY_LENGTH]
