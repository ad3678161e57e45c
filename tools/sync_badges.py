"""Point every notebook's "Open in Colab" badge at the repository named in `_config.yml`.

    python tools/sync_badges.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{name})")
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def repository() -> tuple[str, str]:
    """(owner/name, branch) from `_config.yml`."""
    text = (ROOT / "_config.yml").read_text()
    url = re.search(r"^\s+url:\s*(\S+)", text, re.M)
    branch = re.search(r"^\s+branch:\s*(\S+)", text, re.M)
    if not url or "github.com/" not in url.group(1):
        raise SystemExit("_config.yml: repository.url must be a https://github.com/OWNER/NAME URL")
    return url.group(1).rstrip("/").split("github.com/")[1], branch.group(1) if branch else "main"


def badge_for(name: str) -> str:
    repo, branch = repository()
    return BADGE.format(repo=repo, branch=branch, name=name)


def main() -> int:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        first = "".join(notebook["cells"][0]["source"])
        updated, count = BADGE_RE.subn(badge_for(path.name), first)
        if count == 0:
            print(f"{path}: no Colab badge in the first cell", file=sys.stderr)
            return 1
        if updated != first:
            notebook["cells"][0]["source"] = updated.splitlines(keepends=True)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
            print(f"updated {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
