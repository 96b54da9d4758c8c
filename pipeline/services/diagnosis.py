"""What `invoke doctor` reports: each check (what it found, the command that fixes it) and the whole
diagnosis of a user (pipeline/services/doctor.py makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # a command; empty when nothing is to be done
    warning: bool = False  # works, but not as well as it could: shown, never a failure

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}

    def line(self) -> str:
        mark = "ok  " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        text = f"{mark} {self.name}: {self.detail}"
        return text + (f"\n     fix: {self.fix}" if self.fix else "")


@dataclass
class Diagnosis:
    user: str
    uid: int
    checks: list[DoctorCheck]
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "rootless": self.uid != 0,
            "ok": self.ok,
            "checks": [check.to_dict() for check in self.checks],
            "changed": self.changed,
        }

    def text(self) -> str:
        mode = "rootless" if self.uid != 0 else "rootful"
        lines = [f"changed: {change}" for change in self.changed]
        lines.append(f"checks for {self.user} ({mode} podman and mmdebstrap):")
        lines += [check.line() for check in self.checks]
        failed = [check.name for check in self.checks if not check.ok]
        lines.append("all checks passed" if not failed else "failed: " + ", ".join(failed))
        return "\n".join(lines)
