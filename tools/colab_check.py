"""Rehearse the chapters' Colab install cell against Colab's package set, without Colab.

    python tools/colab_check.py --freeze tests/data/colab-gpu-pip-freeze.txt

FILE is a `pip freeze` of Colab's GPU runtime (github.com/googlecolab/backend-info publishes one).
The cell runs `pip install -r tools/colab_requirements.txt` and then installs the book with
`--no-deps`, so on Colab pip keeps every installed package that satisfies the requirements. This
check models that with `uv pip compile` for Colab's Python (3.13) and platform (manylinux, glibc
2.35): the requirements file, plus FILE's versions (local labels such as `+cu128` stripped) as
constraints for every package the file does not name, or names with a range that FILE's version
already satisfies. So any version Colab would have to change must be named in the requirements
file, with its reason; otherwise the resolution fails and uv explains which chain forces it.

It prints every package whose version the install would change (old -> new) or add, with the
reason (the file's comment for a pin, else the chain of packages that pulls it in).

Packages built for the runtime (a local label in FILE: torch 2.11.0+cu128 and friends) are stubbed
as having no requirements: the metadata of their PyPI namesakes (for example torch 2.11.0 with
CUDA 13 libraries) is not what Colab has installed, and pip leaves them and their CUDA libraries
alone as long as their version satisfies the requirements.

Exit status: 0 it resolves and leaves numpy, pandas, matplotlib, scipy, scikit-learn, torch,
requests and psutil at Colab's versions; 1 it does not resolve, or it changes one of those (the
offender and the chain that forces it are named); 2 the check could not run (uv missing, registry
unreachable, or a missing, binary or malformed FILE or requirements file: one `error:` line).
Needs uv (`pip install uv`, https://docs.astral.sh/uv/) and access to PyPI.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tools" / "colab_requirements.txt"
PROTECTED = ("numpy", "pandas", "matplotlib", "scipy", "scikit-learn", "torch", "requests",
             "psutil")
PYTHON = "3.13"
PLATFORM = "x86_64-manylinux_2_35"  # Colab: Ubuntu 22.04 (glibc 2.35), x86_64
UV_MISSING = ("uv not found: install it with `pip install uv` (or see "
              "https://docs.astral.sh/uv/getting-started/installation/)")


@dataclass
class Freeze:
    versions: dict[str, str] = field(default_factory=dict)  # canonical name -> public version
    spelled: dict[str, str] = field(default_factory=dict)  # canonical name -> name as in FILE
    local: dict[str, str] = field(default_factory=dict)  # canonical name -> version with label
    unversioned: list[str] = field(default_factory=list)  # direct references, editable installs


def parse_freeze(text: str) -> Freeze:
    """Versions from `pip freeze` output; `name @ url` and `-e` lines cannot be constrained."""
    freeze = Freeze()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "--editable")):
            egg = re.search(r"[#&]egg=([A-Za-z0-9._-]+)", line)
            freeze.unversioned.append(egg.group(1) if egg else line.split()[-1])
            continue
        if line.startswith("-"):
            continue  # pip options (--index-url ...)
        if " @ " in line:
            freeze.unversioned.append(line.split(" @ ", 1)[0].strip())
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*(\S+)$", line)
        if not match:
            raise ValueError(f"line {number}: not a pip freeze line: {raw!r}")
        name, version = match.groups()
        key = canonicalize_name(name)
        public, _, label = version.partition("+")
        freeze.versions[key], freeze.spelled[key] = public, name
        if label:
            freeze.local[key] = version
    return freeze


@dataclass
class Pin:
    requirement: Requirement
    reason: str

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)


def parse_requirements(text: str) -> list[Pin]:
    """The requirements, each with the comment on its line as the reason."""
    pins = []
    for number, raw in enumerate(text.splitlines(), start=1):
        spec, *comment = re.split(r"(?:^|\s)#", raw, maxsplit=1)  # pip's comment rule
        spec, reason = spec.strip(), "".join(comment)
        if not spec:
            continue
        if spec.startswith("-"):
            raise ValueError(f"line {number}: pip options are not supported in the Colab "
                             f"requirements: {raw!r}")
        try:
            pins.append(Pin(Requirement(spec), reason.strip()))
        except InvalidRequirement as error:
            raise ValueError(f"line {number}: bad requirement {raw!r}: {error}") from None
    return pins


def constraints_for(freeze: Freeze, pins: list[Pin]) -> list[str]:
    """FILE's versions for every package the requirements leave as they are on Colab."""
    named = {pin.name: pin for pin in pins}
    lines = []
    for name, version in sorted(freeze.versions.items()):
        pin = named.get(name)
        if pin is None or pin.requirement.specifier.contains(version, prereleases=True):
            lines.append(f"{freeze.spelled[name]}=={version}")
    return lines


def uv_config(freeze: Freeze) -> str:
    """uv.toml stubbing the runtime-built packages (see the module docstring)."""
    return "".join(f'[[dependency-metadata]]\nname = "{freeze.spelled[name]}"\n'
                   f'version = "{freeze.versions[name]}"\nrequires-dist = []\n\n'
                   for name in sorted(freeze.local))


RESOLVED_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)"
                           r"\s*(?:#\s*via\s+(.*))?$")


@dataclass
class Resolved:
    version: str
    via: list[str]  # package names, "-r FILE" (the requirements) or "-c FILE" (a constraint)


def parse_resolution(text: str) -> dict[str, Resolved]:
    """`uv pip compile --annotation-style line` output -> {canonical name: Resolved}."""
    resolved = {}
    for line in text.splitlines():
        match = RESOLVED_LINE.match(line.strip())
        if match:
            name, version, via = match.groups()
            resolved[canonicalize_name(name)] = Resolved(
                version, [v.strip() for v in (via or "").split(",") if v.strip()])
    return resolved


@dataclass
class Change:
    name: str
    old: str | None  # None: a package Colab does not have
    new: str
    why: str


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def chain(name: str, resolved: dict[str, Resolved]) -> list[str]:
    """Shortest chain name <- parent <- ... <- the requirements file that pulls `name` in."""
    queue, seen = deque([[name]]), {name}
    while queue:
        path = queue.popleft()
        for parent in resolved.get(path[-1], Resolved("", [])).via:
            if parent.startswith("-r"):
                return path + [REQUIREMENTS.name]
            key = canonicalize_name(parent) if not parent.startswith("-") else None
            if key and key not in seen:
                seen.add(key)
                queue.append(path + [key])
    return [name]


def changes(freeze: Freeze, resolved: dict[str, Resolved], pins: list[Pin]) -> list[Change]:
    reasons = {pin.name: f"{pin.requirement}: {pin.reason}" if pin.reason else str(pin.requirement)
               for pin in pins}
    found = []
    for name, item in sorted(resolved.items()):
        old = freeze.versions.get(name)
        if old is not None and _same(old, item.version):
            continue
        why = reasons.get(name) or "required via " + " <- ".join(chain(name, resolved)[1:])
        found.append(Change(name, old, item.version, why))
    return found


def verdict(freeze: Freeze, resolved: dict[str, Resolved], pins: list[Pin],
            protected: tuple[str, ...] = PROTECTED) -> tuple[int, list[str]]:
    """(exit status, report lines) for a successful resolution."""
    found = changes(freeze, resolved, pins)
    width = max([len(c.name) for c in found] + [10])
    versions = max([len(f"{c.old} -> {c.new}") for c in found] + [10])
    updated = [c for c in found if c.old is not None]
    added = [c for c in found if c.old is None]
    lines = [f"Changes to Colab's packages ({len(updated)}):"]
    lines += [f"  {c.name:<{width}}  {f'{c.old} -> {c.new}':<{versions}}  {c.why}"
              for c in updated] or ["  none"]
    lines += [f"New packages ({len(added)}):"]
    lines += [f"  {c.name:<{width}}  {f'new: {c.new}':<{versions}}  {c.why}"
              for c in added] or ["  none"]
    offenders = [c for c in found if c.name in {canonicalize_name(p) for p in protected}]
    if offenders:
        for c in offenders:
            path = " <- ".join(chain(c.name, resolved))
            lines.append(f"FAIL: {c.name} {c.old or '(not installed)'} -> {c.new} would change a "
                         f"package the book leaves to Colab; forced by {path} ({c.why})")
        return 1, lines
    kept = [f"{p} {freeze.versions[canonicalize_name(p)]}" for p in protected
            if canonicalize_name(p) in freeze.versions]
    lines.append("OK: resolves for Python " + PYTHON + "; left at Colab's versions: "
                 + ", ".join(kept))
    return 0, lines


def explain_failure(stderr: str, freeze: Freeze) -> list[str]:
    """uv's explanation, plus which of Colab's versions blocks (it is a constraint from FILE)."""
    lines = ["FAIL: the requirements do not resolve against Colab's packages. uv says:"]
    lines += ["  " + line for line in stderr.splitlines()
              if line.strip() and not line.startswith("warning:")]
    blockers = []
    for name, version in re.findall(r"\b([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?),? we can conclude",
                                    stderr):
        key = canonicalize_name(name)
        if freeze.versions.get(key) == version and key not in blockers:
            blockers.append(key)
    for key in blockers:
        what = ("it is one of the packages the book leaves to Colab: choose versions of the "
                "pinned packages that accept it" if key in {canonicalize_name(p) for p in PROTECTED}
                else "pin the version it must change to in the requirements file, with the reason")
        lines.append(f"Offender: Colab's {freeze.spelled[key]}=={freeze.versions[key]} "
                     f"(kept as a constraint); {what}.")
    return lines


def find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # the `uv` package from PyPI, installed but not on PATH
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return None


def run_uv(requirements: Path, constraints: list[str], config: str) -> subprocess.CompletedProcess:
    uv = find_uv()
    if uv is None:
        raise FileNotFoundError(UV_MISSING)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "constraints.txt").write_text("\n".join(constraints) + "\n")
        (Path(tmp) / "uv.toml").write_text(config)
        command = [uv, "pip", "compile", str(requirements.resolve()), "-c", "constraints.txt",
                   "--config-file", "uv.toml", "--python-version", PYTHON,
                   "--python-platform", PLATFORM, "--no-python-downloads", "--no-header",
                   "--annotation-style", "line"]
        return subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=900)


class InputError(ValueError):
    """A freeze or requirements file that cannot be used; the message names it."""


def read_inputs(freeze_path: Path, requirements: Path) -> tuple[Freeze, list[Pin]]:
    """Both files parsed; a missing, binary or malformed one is an `InputError` naming it."""
    parsed = []
    for option, path, parse in (("--freeze", freeze_path, parse_freeze),
                                ("--requirements", requirements, parse_requirements)):
        if not path.is_file():
            raise InputError(f"{option} {path}: no such file")
        try:
            parsed.append(parse(path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError as err:
            raise InputError(f"{option} {path}: not a text file ({err.reason} at byte "
                             f"{err.start})") from None
        except ValueError as err:
            raise InputError(f"{option} {path}: {err}") from None
    freeze, pins = parsed
    if not freeze.versions:
        raise InputError(f"--freeze {freeze_path}: no `name==version` line (is it a pip freeze?)")
    return freeze, pins


def check(freeze_path: Path, requirements: Path = REQUIREMENTS, resolve=run_uv) -> int:
    """Exit status of the check (see the module docstring); a file that cannot be used is an
    `InputError`."""
    freeze, pins = read_inputs(freeze_path, requirements)
    constraints = constraints_for(freeze, pins)
    shown = requirements.relative_to(ROOT) if requirements.is_relative_to(ROOT) else requirements
    print(f"Resolving {shown} for Python {PYTHON} ({PLATFORM}) against {freeze_path}: "
          f"{len(freeze.versions)} packages, {len(constraints)} kept as constraints"
          + (f"; {len(freeze.unversioned)} without a version (direct references, editable): "
             + ", ".join(freeze.unversioned) if freeze.unversioned else ""))
    try:
        result = resolve(requirements, constraints, uv_config(freeze))
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    if result.returncode != 0:
        if "No solution found" in result.stderr:
            print("\n".join(explain_failure(result.stderr, freeze)))
            return 1
        print("The check could not run: uv failed (is PyPI reachable?):\n" + result.stderr,
              file=sys.stderr)
        return 2
    code, lines = verdict(freeze, parse_resolution(result.stdout), pins)
    print("\n".join(lines))
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", type=Path, required=True,
                        help="pip freeze of Colab's GPU runtime")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS,
                        help="the install cell's requirements (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        return check(args.freeze, args.requirements)
    except InputError as err:  # the check could not run: one line, exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
