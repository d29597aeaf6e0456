"""MkDocs hook: serve the repository's own files (README, benchmark results, CONTRIBUTING, ...) as pages.

The benchmark scripts write their results under benchmarks/ and MkDocs only reads docs_dir, so this adds
those files to the site at the same relative path they have in the repository (benchmarks/SPEED.md is the
page benchmarks/SPEED.md): one copy of each result, and links between them keep working. The README is the
site's first page (MkDocs makes README.md the index). A file at the repository's root links to the site's
pages as ``docs/PAGE.md`` (right on GitHub); in the site those pages sit beside it, so the prefix is dropped.
"""

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
SERVED = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "LICENSE", "benchmarks/**/*.md", "benchmarks/**/*.png"]
LINK_INTO_DOCS = re.compile(r"\]\(docs/")


def on_files(files: Files, config) -> Files:
    """Add every file that SERVED matches, from the repository root, beside docs_dir's own files."""
    for pattern in SERVED:
        for path in sorted(ROOT.glob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if "/runs/" not in f"/{relative}":  # run folders of a local benchmark run are not part of the site
                files.append(File(relative, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Links of a root file (CONTRIBUTING.md) into docs/ point at the pages beside it in the site."""
    if "/" not in page.file.src_uri and Path(page.file.abs_src_path).parent == ROOT:
        return LINK_INTO_DOCS.sub("](", markdown)
    return markdown
