"""kaniko-pipeline: build, sign and publish kaniko executor images from the maintained fork.

The package mirrors the flow of a release: ``fork`` (clone and pin), ``compile`` (Go binaries),
``image`` (OCI layout), ``registry`` (publish), ``signing``, ``kaniko`` (build the test image) and
``smoke``. Nothing here imports invoke: ``tasks.py`` is the only command-line layer.
"""

from pipeline.errors import PipelineError

__all__ = ["PipelineError"]
