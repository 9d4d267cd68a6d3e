"""Named SQL statements kept in ``.sql`` files (one file per backend, one per migration).

A file is a sequence of statements, each introduced by a ``-- name: <name>`` line; the comment lines
right after it document the statement. Statements are kept exactly as written (parameters in the
driver's own style), so what runs is what a reviewer reads and can paste into ``EXPLAIN``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"^--\s*name:\s*(?P<name>[\w.:-]+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split ``text`` into ``{name: statement}``, in file order, without comments or the final ``;``."""
    statements: dict[str, str] = {}
    marks = list(_NAME.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() : following.start() if following else len(text)]
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip().removesuffix(";").strip()
        name = mark["name"]
        if name in statements:
            raise ValueError(f"SQL statement {name!r} is defined twice")
        if not statement:
            raise ValueError(f"SQL statement {name!r} is empty")
        statements[name] = statement
    return statements


@cache
def load(package: str, resource: str) -> dict[str, str]:
    """The named statements of the file ``resource`` shipped in ``package`` (cached)."""
    return parse(files(package).joinpath(resource).read_text(encoding="utf-8"))
