"""kaniko-pipeline: build, sign and publish kaniko executor images from the maintained fork.

The packages are layered in the order the data flows (docs/architecture.md; import-linter checks it):
``cli`` (what tasks.py declares and prints), ``release`` (the orchestration), ``stages`` (one task's work
each), ``services`` and ``evidence`` (processes the pipeline runs; predicates and comparisons),
``recipes``, ``image`` and ``signing`` (formats), ``golang`` and ``policy``, ``source`` and ``registry``,
``oci``, then the core modules and ``errors``. Only ``cli`` imports invoke; ``tasks.py`` holds the tasks.
"""

from pipeline.errors import PipelineError

__all__ = ["PipelineError"]
