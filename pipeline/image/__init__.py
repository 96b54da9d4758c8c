"""Image assembly without a daemon: deterministic layers and the four kaniko variants."""
