"""README.md is the front door and docs/ holds the guides: every relative link in them resolves.

A link resolves when its file (or folder) exists, relative to the page that holds it, and its `#anchor`, if any,
is one of that page's headings as GitHub names them. Links to web addresses are not fetched. A path that leaves
the repository may only reach `../shared`, the folder that sits beside it (`.ci/setup` needs it too).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target "title") and ![alt](target); the text may run over lines, the target may sit in <...>
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def links(text: str) -> list[str]:
    prose = FENCE.sub("", text)
    prose = CODE_SPAN.sub("code", prose)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (code spans and links reduced to their text), lower case,
    without punctuation but `-` and `_`, each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, title in HEADING.findall(FENCE.sub("", text)):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> tuple[int, list[str]]:
    text = page.read_text(encoding="utf-8")
    problems: list[str] = []
    targets = [t for t in links(text) if not SCHEME.match(t)]
    for target in targets:
        path_part, _, fragment = target.partition("#")
        where = f"{page.relative_to(REPO)}: ({target})"
        # lexically (no symlink resolution): ../shared may itself be a link to the shared folder
        resolved = Path(os.path.normpath(page.parent / unquote(path_part))) if path_part else page
        if not resolved.is_relative_to(REPO) and not resolved.is_relative_to(REPO.parent / "shared"):
            problems.append(f"{where} leaves the repository (only ../shared, beside it, may be linked)")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file {resolved}")
            continue
        if fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(resolved.read_text("utf-8")):
            problems.append(f"{where}: no heading #{fragment} in {resolved.name}")
    return len(targets), problems


def test_the_slugs_are_githubs() -> None:
    assert slug("Chaos run: `octobot-signals chaos`") == "chaos-run-octobot-signals-chaos"
    assert slug("A strategy's track record") == "a-strategys-track-record"
    assert slug("Mode settings (user inputs, shown in OctoBot's web UI)") == \
        "mode-settings-user-inputs-shown-in-octobots-web-ui"
    assert slug("Reading a track record: `GET /api/strategies/{id}/performance`") == \
        "reading-a-track-record-get-apistrategiesidperformance"
    assert anchors("# Title\n## Notes\n```\n## not a heading\n```\n## Notes\n") == {"title", "notes", "notes-1"}


def test_the_link_finder_sees_links_and_skips_code() -> None:
    text = ("See [the guide](docs/a.md#part), ![shot](screenshots/x.png) and [a `code` text\nover lines](b.md).\n"
            "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n[ref]: c.md\n")
    assert links(text) == ["docs/a.md#part", "screenshots/x.png", "b.md", "c.md"]


def test_every_relative_link_in_readme_and_docs_resolves() -> None:
    checked = 0
    problems: list[str] = []
    for page in PAGES:
        count, broken = broken_links(page)
        checked += count
        problems += broken
    assert problems == [], "\n".join(problems)
    assert len(PAGES) >= 10 and checked >= 40, (len(PAGES), checked)  # the guides are there, and linked


def test_the_readme_is_a_front_door_with_a_map_of_every_guide() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(readme) if not SCHEME.match(t)}
    unlisted = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert unlisted == [], f"guides missing from README.md's map: {unlisted}"
    # the two commands for a new machine; CI (.ci/run) runs the same test command
    two = readme.split("## Two commands for a new machine", 1)[1].split("\n## ", 1)[0]
    assert "bash .ci/setup && .venv/bin/octobot-signals demo" in two
    assert "bash .ci/setup && .venv/bin/python -m pytest -q" in two
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash .ci/setup" in ci and ".venv/bin/python -m pytest -q" in ci
