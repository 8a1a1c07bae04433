"""The documentation of the contracts cannot drift from the code: the JSON Schemas in docs/schemas/ and
docs/events/ are what the models generate (regenerate with ``make docs``), and code and tests cite only
documents in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flexrestore.contracts.events import PUBLISHED, RESTORE_DETAIL_TYPES, RUN_COMPLETED
from flexrestore.contracts.schemas import event_schemas, rendered, schemas
from tests.published import event_schema_path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


@pytest.mark.parametrize("name", sorted(schemas()))
def test_the_committed_schema_is_what_the_model_generates(name: str) -> None:
    committed = DOCS / "schemas" / name
    assert committed.is_file(), f"docs/schemas/{name} is missing: run make docs"
    assert committed.read_text(encoding="utf-8") == rendered(schemas()[name]), (
        f"docs/schemas/{name} differs from the model: run make docs and commit the result"
    )


def test_no_stale_schema_is_left_behind() -> None:
    assert sorted(p.name for p in (DOCS / "schemas").glob("*.json")) == sorted(schemas())


@pytest.mark.parametrize("name", sorted(event_schemas()))
def test_the_committed_event_schema_is_what_the_model_generates(name: str) -> None:
    committed = DOCS / "events" / name
    assert committed.is_file(), f"docs/events/{name} is missing: run make docs"
    assert committed.read_text(encoding="utf-8") == rendered(event_schemas()[name]), (
        f"docs/events/{name} differs from the model: run make docs and commit the result"
    )


def test_every_detail_type_has_one_schema_and_no_stale_one_is_left_behind() -> None:
    assert sorted(p.name for p in (DOCS / "events").glob("*.json")) == sorted(event_schemas())
    detail_types = {detail_type for _, detail_type, _ in PUBLISHED.values()}
    assert detail_types == {*RESTORE_DETAIL_TYPES.values(), RUN_COMPLETED}
    for detail_type in detail_types:  # one file per detail-type, named after it
        assert event_schema_path(detail_type).is_file()


def test_code_and_tests_cite_only_documents_in_the_repository() -> None:
    cited = re.compile(r"docs/[\w./-]+\.(?:md|json)")
    missing = [
        f"{path.relative_to(REPO)}: {match}"
        for folder in ("src", "tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        for match in cited.findall(path.read_text(encoding="utf-8"))
        if not (REPO / match).exists()
    ]
    assert missing == []
    outside = re.compile(r"CONTRACTS\.md|\batlas/README|\.\./shared|\bDESIGN\b")
    found = [
        f"{path.relative_to(REPO)}"
        for folder in ("src", "tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        if outside.search(path.read_text(encoding="utf-8")) and path.name != "test_contract_docs.py"
    ]
    assert found == []


def test_readme_and_changelog_point_at_the_published_contracts() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(docs/openapi.json)" in readme and "(docs/events/)" in readme and "(CHANGELOG.md)" in readme
    for name in event_schemas():
        assert f"(docs/events/{name})" in readme, f"README's Consuming outcomes does not link {name}"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    for _, detail_type, _ in PUBLISHED.values():
        assert detail_type in changelog, detail_type
    assert "flexrestore.restores" in changelog and "flexrestore.runs" in changelog
