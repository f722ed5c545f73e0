"""bench/marks.py runs and shows what it claims: in today's schema the learner's mark is
never a HOT update. PostgreSQL only: what it measures is PostgreSQL's."""

from __future__ import annotations

from bench import marks
from tests.conftest import pg_admin_url


def test_the_marks_bench_prints_every_part_of_the_learners_round(capsys):
    marks.main(["--rows", "60", "--repeats", "1", "--layouts", "today",
                "--model-examples", "200", "--pg-url", pg_admin_url()])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[1:-1]
            for line in out.splitlines() if line.startswith("| ")}
    assert rows["today"][5].strip() == "0%"  # the queue index's predicate forbids HOT
    for part in ("read the queue", "mark learned", "verify the rewards",
                 "publish a snapshot", f"{marks.WORKERS} workers read it",
                 marks.BEFORE_0008, marks.READ_AS_TEXT):
        assert part in rows, part
