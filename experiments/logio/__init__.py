"""Importing and exporting logged decisions (JSON Lines and VW/Personalizer DSJson).

- ``records``: one logged decision read from a file, and the shared line checks.
- ``jsonl`` / ``dsjson``: the two formats.
- ``reader``: format detection, a validation scan, and the record stream.
- ``importer``: records → ``decisions`` rows (idempotent by event id, batched).
- ``export``: decisions → DSJson that VW's ``--dsjson`` reader accepts.
"""
