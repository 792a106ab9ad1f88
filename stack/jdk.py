"""Finding a JDK that can run OpenSearch 3.x: version 21 or newer with `jdk.incubator.vector`."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError

MIN_VERSION = 21
REQUIRED_MODULE = "jdk.incubator.vector"
DEFAULT_ROOTS = (Path("/usr/lib/jvm"),)
_VERSION = re.compile(r'^JAVA_VERSION="?(?:1\.)?(\d+)')
_MODULES = re.compile(r'^MODULES="?([^"]*)"?')
_VERSION_OUTPUT = re.compile(r'version "(?:1\.)?(\d+)')


@dataclass(frozen=True)
class Jdk:
    """A usable JDK."""

    home: Path
    major: int


def find_jdk(roots: Sequence[Path] = DEFAULT_ROOTS, java_home: str | None = None) -> Jdk:
    """The newest JDK ≥ 21 with jdk.incubator.vector among JAVA_HOME and each root's subdirectories."""
    java_home = os.environ.get("JAVA_HOME") if java_home is None else java_home
    rejected: list[str] = []
    usable: list[Jdk] = []
    for home in _candidates(roots, java_home):
        reason, jdk = _inspect(home)
        if jdk is None:
            rejected.append(f"{home}: {reason}")
        else:
            usable.append(jdk)
    if usable:
        return max(usable, key=lambda jdk: jdk.major)
    searched = ", ".join([*(f"{root}/*" for root in roots), f"JAVA_HOME={java_home or '(unset)'}"])
    found = "; ".join(rejected) or "no JDK directories at all"
    raise StackError(
        f"no JDK >= {MIN_VERSION} with the {REQUIRED_MODULE} module found (OpenSearch 3.x needs both). "
        f"Searched {searched}. Found: {found}. Install e.g. Temurin 21+ under /usr/lib/jvm or set JAVA_HOME."
    )


def _candidates(roots: Sequence[Path], java_home: str | None) -> Iterable[Path]:
    seen: set[Path] = set()
    listed = [Path(java_home)] if java_home else []
    for root in roots:
        if root.is_dir():
            listed.extend(sorted(root.iterdir()))
    for home in listed:
        resolved = home.resolve()
        # Debian's /usr/lib/jvm holds symlinks to the same JDK under several names.
        if resolved not in seen and resolved.is_dir():
            seen.add(resolved)
            yield resolved


def _inspect(home: Path) -> tuple[str, Jdk | None]:
    java = home / "bin" / "java"
    if not java.is_file():
        return "no bin/java", None
    major, modules = _from_release(home / "release")
    if major is None or modules is None:
        major, modules = _from_java(java)
    if major is None:
        return "cannot tell its version", None
    if major < MIN_VERSION:
        return f"version {major} < {MIN_VERSION}", None
    if REQUIRED_MODULE not in (modules or set()):
        return f"version {major} but no {REQUIRED_MODULE} module", None
    return "", Jdk(home=home, major=major)


def _from_release(release: Path) -> tuple[int | None, set[str] | None]:
    if not release.is_file():
        return None, None
    major: int | None = None
    modules: set[str] | None = None
    for line in release.read_text(errors="replace").splitlines():
        if match := _VERSION.match(line):
            major = int(match.group(1))
        elif match := _MODULES.match(line):
            modules = set(match.group(1).split())
    return major, modules


def _from_java(java: Path) -> tuple[int | None, set[str] | None]:
    try:
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
        listing = subprocess.run(
            [java, "--list-modules"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    match = _VERSION_OUTPUT.search(version.stderr + version.stdout)
    modules = {line.split("@", 1)[0].strip() for line in listing.stdout.splitlines() if line.strip()}
    return (int(match.group(1)) if match else None), modules
