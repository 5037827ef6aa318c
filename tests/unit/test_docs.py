"""The documentation cites only files that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = (
    "payments|telemetry|psp|store|gateway|actors|paystream|stack|drill|bench|tests|docs|deploy"
)
# A path into one of the project's folders, as the docs write them: `store/db.py`.
CITED = re.compile(
    rf"(?<![\w./])(?:{FOLDERS})/[\w./-]*\w\.(?:py|sql|md|json|ya?ml|html|js|css|png|toml)\b"
)


@pytest.mark.parametrize("document", ["README.md", "docs/security.md"])
def test_every_file_a_document_cites_exists(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = sorted({path for path in CITED.findall(text) if not (ROOT / path).exists()})
    assert missing == []
