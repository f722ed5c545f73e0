"""The online learning loop: closed decisions → VW updates → model snapshots.

- ``join``: which decisions are learned, and with which reward.
- ``progress``: progressive-validation statistics kept with each snapshot.
- ``lease``: one learner per experiment at a time.
- ``snapshots``: the ``models`` table (publish, find, prune).
- ``imports``: admin import of a VW model as a new version.
- ``learner``: one experiment's learner (exactly-once commits).
- ``loop``: the ``tailor learn`` process (every experiment, leases, signals).
- ``status``: the ``GET /v1/experiments/{key}/learning`` document.
"""
