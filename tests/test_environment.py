"""`environment.yml` (conda) installs exactly what the README's two install lines install."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def readme_pip_installs() -> list[list[str]]:
    """The arguments of each `pip install` line in the README's first code block."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [shlex.split(line.split("#")[0])[2:] for line in block.splitlines()
            if line.startswith("pip install")]


def test_environment_yml_parses_and_matches_the_readme_install():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["name"] and "pip" in env["dependencies"]
    assert any(str(d).startswith("python=") for d in env["dependencies"])
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # the README: `pip install torch==2.13.0`, then `pip install -e ".[test]" -c constraints.txt`
    readme = [arg for line in readme_pip_installs() for arg in line]
    conda = [arg for entry in pip_section for arg in shlex.split(entry)]
    assert conda == readme, (conda, readme)
    assert (REPO / "constraints.txt").is_file()
