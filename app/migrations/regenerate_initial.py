"""Developer tool (before the first release only): rewrite 0001 from the models.

    .venv/bin/python app/migrations/regenerate_initial.py

Once a release has shipped, schema changes get a new revision instead
(`alembic revision --autogenerate`), never an edit of an applied one.
"""

import re
import tempfile

from alembic import command

from app.migrate import MIGRATIONS, alembic_config

if __name__ == "__main__":
    for old in (MIGRATIONS / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        command.revision(alembic_config(f"sqlite:///{tmp}/empty.db"), message="initial schema",
                         autogenerate=True, rev_id="0001")
    path = next((MIGRATIONS / "versions").glob("0001_*.py"))
    text = path.read_text().replace("astext_type=Text()", "astext_type=sa.Text()")
    text = re.sub(r"Create Date: .*", "Create Date: 2026-11-21", text)
    path.write_text(text)
    print(f"rewrote {path}")
