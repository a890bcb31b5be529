"""docs/okx-api.md lists exactly the OKX routes the server answers, with their permissions and
rate limits (the table is what integrators read; this keeps it true)."""

from __future__ import annotations

import re
from pathlib import Path

from stakehouse.api.okx.routes import ALL

DOC = Path(__file__).resolve().parents[2] / "docs" / "okx-api.md"
ROW = re.compile(r"^\| `(GET|POST) /api/v5(\S+)` \| (\w+) \| (\d+) / (\d+) s \(([^)]+)\) \|$")


def _documented() -> set[tuple[str, str, str, int, int, str]]:
    out = set()
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if not m:
            continue
        method, path, perm, count, seconds, rule = m.groups()
        variants = re.search(r"\{([^}]+)\}", path)
        paths = [path.replace(variants.group(0), v) for v in variants.group(1).split(",")] if variants else [path]
        out |= {(method, p, perm, int(count), int(seconds), rule.replace(" ", "")) for p in paths}
    return out


def test_the_endpoint_table_matches_the_route_table() -> None:
    served = {(r.method, r.path, r.perm or "public", r.limit.count, r.limit.seconds, r.limit.rule) for r in ALL}
    documented = _documented()
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
