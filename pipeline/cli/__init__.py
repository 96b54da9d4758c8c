"""What the command line (tasks.py) declares and prints: each task's options and their help (``catalog``,
``options``) and the typed value each task gets them as (``taskoptions``), the task decorator that makes invoke tasks of them (``invocation``, the one module that
imports invoke), the text printed without --json (``text``), and the commands of `invoke test` and
`invoke lint` (``checks``)."""
