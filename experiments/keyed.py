"""Insert a row only if its idempotency key could be claimed, as one atomic step.

Decisions and reward events are partitioned by time on PostgreSQL, where a unique
constraint must include the partition key, so their idempotency keys live in small
unpartitioned tables (`decision_keys`, `reward_keys`). Claiming the key also allots the
new row's id; the row is inserted with that id only when the claim succeeded.
"""

from __future__ import annotations

import sqlalchemy as sa


def claim_then_insert(dialect: str, claim: sa.Insert, table: sa.Table,
                      link: str) -> tuple[sa.Executable, ...]:
    """The statements of the step, to run in order in one transaction, each binding the
    previous one's first column as `link`; no row from one of them: nothing was written.

    Args:
        claim: `INSERT INTO <keys> ... ON CONFLICT DO NOTHING RETURNING <new row id>`.
        table: the table of the row; every column but `id` is bound by its own name.

    PostgreSQL gets one statement (a data-modifying CTE); SQLite, which has no such CTE,
    the claim and then the row.
    """
    columns = [c.name for c in table.columns if c.name != "id"]
    values = [sa.bindparam(name, type_=table.c[name].type) for name in columns]
    if dialect == "postgresql":
        claimed = claim.cte("claimed")
        return (sa.insert(table).from_select(
            ["id", *columns], sa.select(list(claimed.c)[0], *values))
            .returning(table.c.id),)
    row = sa.insert(table).values(
        id=sa.bindparam(link, type_=table.c.id.type),
        **dict(zip(columns, values, strict=True))).returning(table.c.id)
    return claim, row
