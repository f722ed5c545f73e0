"""`python -m app ...` is the `tailor` command (how `tailor serve` starts the learner)."""

from app.cli import main

main()
