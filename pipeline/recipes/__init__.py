"""Deploy recipes for the published executor images: Kubernetes manifests and GitLab configuration.

:mod:`pipeline.stages.render` picks the recipe for a target; :mod:`.kubernetes` and :mod:`.gitlab` build them.
Every recipe pins the executor by digest and runs it with the kaniko README's profile: every capability
dropped but CHOWN, FOWNER and DAC_OVERRIDE, and no privilege escalation.
"""

CAPABILITIES = ("CHOWN", "FOWNER", "DAC_OVERRIDE")
