"""What the command line (tasks.py) declares and prints, without invoke: its options and their help."""
