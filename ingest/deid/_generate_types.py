"""Regenerate ``data/attribute_types.json`` from highdicom's copy of the standard.

Two kinds of rows of Table E.1-1 need an attribute's Type:

* a combined action (``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``) chooses between its
  actions by Type;
* a plain ``X`` on an attribute that some IOD requires (Type 1, 1C, 2 or 2C) must be emptied or
  replaced by a dummy there instead, or the object would no longer conform (PS3.15 E.1.1 item
  1). ``X`` rows that are Type 3 everywhere are left out: removing them is always conformant.

highdicom ships PS3.3's module tables as JSON (``highdicom/_standard``, a private location,
hence this offline step instead of a run-time dependency). For each such attribute the file
records its Type at the top level of every IOD where it is required (Type 3 is the default and
not written), and its Type inside each sequence that can contain it.

Run ``python -m ingest.deid._generate_types`` after updating highdicom or the table.
"""

from __future__ import annotations

import json
import pkgutil
from importlib.metadata import version
from pathlib import Path

from pydicom.datadict import keyword_for_tag

from .table import TYPE_STRENGTH, TableRow, load_table

OUTPUT = Path(__file__).with_name("data") / "attribute_types.json"


def _standard(name: str) -> dict:  # type: ignore[type-arg]
    data = pkgutil.get_data("highdicom", f"_standard/{name}")
    if data is None:
        raise FileNotFoundError(f"highdicom has no _standard/{name}")
    return json.loads(data)


def _stronger(a: str | None, b: str) -> str:
    if a is None or TYPE_STRENGTH[b] < TYPE_STRENGTH[a]:
        return b
    return a


def _needs_types(row: TableRow) -> bool:
    return row.pattern.tag is not None and (row.basic == "X" or "/" in row.basic)


def build() -> dict:  # type: ignore[type-arg]
    modules = _standard("module_attribute_map.json")
    iods = _standard("iod_module_map.json")
    sop_classes = _standard("sop_class_iod_map.json")
    rows = {keyword_for_tag(row.pattern.tag): row for row in load_table() if _needs_types(row)}
    attributes: dict[str, dict] = {  # type: ignore[type-arg]
        row.tag: {"keyword": keyword, "action": row.basic, "iods": {}, "nested": {}}
        for keyword, row in rows.items()
    }
    module_types: dict[str, dict[str, str]] = {}
    for module, entries in modules.items():
        for entry in entries:
            row = rows.get(entry["keyword"])
            if row is None or entry["type"] not in TYPE_STRENGTH:
                continue
            record = attributes[row.tag]
            if entry["path"]:
                parent = entry["path"][-1]
                record["nested"][parent] = _stronger(record["nested"].get(parent), entry["type"])
            else:
                types = module_types.setdefault(module, {})
                types[row.tag] = _stronger(types.get(row.tag), entry["type"])
    for iod, iod_modules in iods.items():
        for usage in iod_modules:
            for tag, attribute_type in module_types.get(usage["key"], {}).items():
                found = attributes[tag]["iods"]
                found[iod] = _stronger(found.get(iod), attribute_type)
    for record in attributes.values():
        strongest = None
        for attribute_type in (*record["iods"].values(), *record["nested"].values()):
            strongest = _stronger(strongest, attribute_type)
        record["strongest"] = strongest or "3"
        # Type 3 is what type_of assumes for an IOD not listed; inside a sequence a listed 3 matters.
        record["iods"] = {iod: t for iod, t in sorted(record["iods"].items()) if t != "3"}
        record["nested"] = dict(sorted(record["nested"].items()))
    kept = {
        tag: record for tag, record in sorted(attributes.items())
        if record["action"] != "X" or record["strongest"] != "3"
    }
    return {
        "source": f"highdicom {version('highdicom')} _standard (PS3.3 module tables)",
        "sop_class_iod": dict(sorted(sop_classes.items())),
        "attributes": kept,
    }


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
