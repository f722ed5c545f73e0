"""The analyst page's feature-importance section: the newest finished feature importance.

Like the OPE section, the page never computes (that reads the window's decisions and fits
one reward model per feature): it shows the newest one `GET .../reports/features` or
Personalizer's `featureImportances` stored, and says how to compute one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.models import Experiment, OfflineJob


def context(session: Session, experiment: Experiment) -> dict[str, Any]:
    """Template variable ``features``: the newest succeeded importance, or None."""
    job = session.scalars(sa.select(OfflineJob).where(
        OfflineJob.experiment_id == experiment.id, OfflineJob.kind == "featureimportance",
        OfflineJob.status == "Succeeded").order_by(OfflineJob.updated_at.desc(),
                                                   OfflineJob.id.desc()).limit(1)).first()
    if job is None or job.result is None:
        return {"features": None}
    return {"features": {"id": job.job_id, "computed_at": clock.iso(job.updated_at),
                         "since": clock.iso(job.start_time), "until": clock.iso(job.end_time),
                         "n_decisions": job.result["n_decisions"],
                         "method": job.result["method"],
                         "scores": job.result["featureScores"]}}
