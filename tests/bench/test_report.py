"""The benchmarks' JSON files are written on a fresh clone, which has no var/ yet."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import write_json


def test_a_json_file_is_written_into_a_folder_not_made_yet(tmp_path: Path) -> None:
    path = tmp_path / "var" / "bench" / "ingest-cpu.json"
    assert write_json(path, {"samples": 19_000, "stages": [["decoding", 0.15]]}) == path
    assert json.loads(path.read_text()) == {"samples": 19000, "stages": [["decoding", 0.15]]}
