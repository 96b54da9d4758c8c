"""Run one release with the test seams, in a process of its own (so a test can run it as another user).

    python -m tests.support.run_release '{"settings": {...}, "busybox": DIR, "smoke_image": REF,
                                          "report_dir": DIR}'

Prints the report as one JSON object; exit 0 when the release succeeded, 1 when it failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline import config, release
from pipeline.errors import PipelineError
from pipeline.progress import Progress


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    settings = config.Settings.load(spec["settings"])
    options = release.Options(
        busybox=spec.get("busybox"),
        smoke_image=spec.get("smoke_image"),
        report_dir=Path(spec["report_dir"]),
        conformance="off",  # the fake executor cannot build the suite (test_release.py runs that stage)
    )
    try:
        report = release.run(settings, options, progress=Progress())
    except PipelineError as exc:
        sys.stdout.write(json.dumps({"ok": False, "error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
