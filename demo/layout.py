"""Where the demo keeps its processes' pid files and logs, and how it runs the `lockstep` command."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from contract.settings import Settings, Topology


@dataclass(frozen=True)
class Layout:
    """The demo's directory for one key prefix (two prefixes' demos never share pid files)."""

    root: Path

    @classmethod
    def of(cls, settings: Settings, topology: Topology = "single") -> Layout:
        """The layout under the stack's state directory; the cluster demo's apart from the single one's,
        since both may run at once (each on its own stack) and must not stop each other's processes."""
        demo = "demo" if topology == "single" else "demo-cluster"
        return cls(settings.state_dir / demo / settings.key_prefix)

    def pid_file(self, name: str) -> Path:
        """JSON record (pid, argv, port) of a background process the demo started."""
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """Where a background process (or a training run) writes its output."""
        return self.root / f"{name}.log"

    def summary_file(self) -> Path:
        """The last run's verification summary as JSON."""
        return self.root / "summary.json"


def lockstep_command() -> list[str]:
    """argv prefix that runs this checkout's `lockstep` (the script beside our interpreter first)."""
    script = Path(sys.executable).with_name("lockstep")
    if script.exists():
        return [str(script)]
    found = shutil.which("lockstep")
    if found is not None:
        return [found]
    return [sys.executable, "-c", "from cli.main import app; app()"]
