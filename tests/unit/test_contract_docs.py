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


# A document the code names: a path to a Markdown file (``docs/contracts.md``), a folder's ``README``, a
# file reached by a ``../`` path, or a capitalised name cited as one (``see README``, ``README §2``). Each
# must be a file of the repository: a clone has nothing beside it.
CITED_PATH = re.compile(
    r"(?<![\w.])((?:\.\./)+[\w-]+(?:/[\w.-]+)*\.\w+|[\w-]+(?:/[\w.-]+)*(?:\.md|/README))\b"
)
CITED_NAME = re.compile(r"\b(?:[Ss]ee ([A-Z]{4,})\b|([A-Z]{4,}) ?§)")


def _in_repository(name: str, citing: Path) -> bool:
    """``name`` is a file of the repository, from its root, from docs/ or beside the citing file."""
    if name.endswith("/README"):
        name += ".md"
    for base in (REPO, DOCS, citing.parent):
        path = (base / name).resolve()
        if path.is_relative_to(REPO) and path.is_file():
            return True
    return False


def test_code_and_tests_cite_only_documents_in_the_repository() -> None:
    cited = [
        (path, name)
        for folder in ("src", "tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        for text in [path.read_text(encoding="utf-8")]
        for name in [*CITED_PATH.findall(text)] + [f"{a or b}.md" for a, b in CITED_NAME.findall(text)]
    ]
    assert cited, "the pattern finds nothing: it would pass whatever the code cites"
    missing = [f"{path.relative_to(REPO)}: {name}" for path, name in cited if not _in_repository(name, path)]
    assert missing == []


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
