"""Check README.md and docs/*.md: links resolve, commands name files that exist, no fact lost.

Run from the repository root::

    python docs/check_docs.py                  # links, anchors and paths; exit 1 on a problem
    python docs/check_docs.py --against REV    # also: what of REV's README.md the pages lost

The first mode checks that every relative link points to a file that exists (and, with a
``#fragment``, to a heading of that file, slugged as GitHub does), and that every repository path
named in a fenced shell block or in inline code (``examples/...``, ``benchmarks/...``,
``tests/...``, ``docs/...``, ``geventio/...``) exists. The second mode compares an older README
(``git show REV:README.md``) with all the pages together, and lists each heading, number, table
row, code line and sentence of it that none of them holds verbatim: the list is for a person to
read, since a sentence may have been reworded on purpose. It blocks on ``git`` only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.M)
REPO_PATH = re.compile(r"(?<![\w./-])((?:examples|benchmarks|tests|docs|geventio)/[\w./-]*)")
SHELL = {"sh", "shell", "bash", "console"}
NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*(?<![,.])")


def pages(root: Path) -> list[Path]:
    """README.md and every page of docs/, in a stable order."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, blanks to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def without_code(text: str) -> str:
    """The text with its fenced blocks blanked out (headings and links inside them do not count)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def anchors(path: Path) -> set[str]:
    """Every anchor of a Markdown file's headings, with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(without_code(path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_problems(page: Path) -> Iterator[str]:
    """Relative links of ``page`` whose file or heading does not exist."""
    for target in LINK.findall(without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            yield f"{page.relative_to(ROOT)}: link to missing {target}"
        elif fragment and (dest.suffix != ".md" or fragment not in anchors(dest)):
            yield f"{page.relative_to(ROOT)}: link to missing heading {target}"


def path_problems(page: Path) -> Iterator[str]:
    """Repository paths named in shell blocks or inline code of ``page`` that do not exist."""
    text = page.read_text(encoding="utf-8")
    sources = [body for lang, body in FENCE.findall(text) if lang in SHELL]
    sources += re.findall(r"`([^`\n]+)`", without_code(text))
    for source in sources:
        for name in REPO_PATH.findall(source):
            if not (ROOT / name).exists():
                yield f"{page.relative_to(ROOT)}: {name!r} does not exist"


def old_readme(rev: str) -> str:
    """README.md as it was at ``rev``.

    :raises subprocess.CalledProcessError: when git does not know ``rev``.
    """
    return subprocess.run(
        ["git", "show", f"{rev}:README.md"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def normal(text: str) -> str:
    """Whitespace collapsed, so that rewrapped text still matches."""
    return " ".join(text.split())


def sentences(prose: str) -> Iterable[str]:
    """The sentences of Markdown prose: list items apart, tables, headings and code left out."""
    text = re.sub(r"\*\*[^*]+\*\* ?", "", without_code(prose))  # bold lead-ins ("**Polling.**")
    text = re.sub(r"^\s*- ", "\n", text, flags=re.M)  # each list item a paragraph of its own
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [
            line.strip()
            for line in paragraph.splitlines()
            if line.strip() and not line.lstrip().startswith(("|", "#"))
        ]
        for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z`(])", normal(" ".join(lines))):
            if len(sentence) > 3:
                yield sentence


def lost(old: str, new: str) -> dict[str, list[str]]:
    """What ``old`` holds that ``new`` does not hold verbatim, by kind."""
    flat = normal(new)
    prose = " ".join(sentences(new))
    headings_new = {normal(h).lower() for h in HEADING.findall(without_code(new))}
    code_new = {line.strip() for _, body in FENCE.findall(new) for line in body.splitlines()}
    numbers_new = set(NUMBER.findall(new))
    return {
        "heading": [
            h
            for h in HEADING.findall(without_code(old))
            if normal(h).lower() not in headings_new and normal(h) not in flat
        ],
        "number": sorted(set(NUMBER.findall(old)) - numbers_new),
        "table row": [
            row
            for row in without_code(old).splitlines()
            if row.startswith("|") and normal(row) not in flat
        ],
        "code line": [
            line.strip()
            for _, body in FENCE.findall(old)
            for line in body.splitlines()
            if line.strip() and line.strip() not in code_new
        ],
        "sentence": [s for s in sentences(old) if s not in prose],
    }


def main(argv: list[str] | None = None) -> int:
    """Print each problem found; 1 if a link or path is broken, else 0.

    :raises subprocess.CalledProcessError: with ``--against`` an unknown revision.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="list what REV's README.md had")
    args = parser.parse_args(argv)
    problems = [p for page in pages(ROOT) for p in (*link_problems(page), *path_problems(page))]
    for problem in problems:
        print(problem)
    if args.against:
        union = "\n\n".join(page.read_text(encoding="utf-8") for page in pages(ROOT))
        for kind, items in lost(old_readme(args.against), union).items():
            for item in items:
                print(f"not kept verbatim, {kind}: {item}")
    print(f"{len(problems)} broken links or paths in {len(pages(ROOT))} pages", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
