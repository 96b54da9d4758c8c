"""Build one case of the conformance suite with the stage's buildah, in a process of its own (so a test
can run it as another user, in that user's environment).

    python -m tests.support.buildah_case '{"cache": DIR, "registry": HOST, "case": NAME, "out": FILE,
                                           "paths": [PATH, ...]}'

The busybox stand-in base goes through the registry into buildah's storage under ``cache``, as the
stage does. Prints one JSON object: buildah's exit status, its last lines and how ``paths`` are in the image.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.stages.conformance import bases, cases, snapshot
from pipeline.stages.conformance.builders import Buildah


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    cache = Path(spec["cache"])
    base = bases.busybox(cache)
    with Client(credentials=Credentials.anonymous()) as client:
        bases.publish([base], client, spec["registry"])
    buildah = Buildah(cache / "conformance" / "buildah")
    buildah.load_bases([base], spec["registry"])
    case = cases.select(cases.load(), [spec["case"]])[0]
    run = buildah.build(case, Path(spec["out"]))
    files: dict[str, str] = {}
    if run.ok and run.tarball is not None:
        image = snapshot.read_archive(run.tarball)
        files = {path: found.describe() for path in spec["paths"] if (found := image.read(path))}
    print(json.dumps({"returncode": run.returncode, "tail": run.tail(), "files": files}))
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
