"""``steadyvoice backup create | verify | restore``: consistent, incremental, checksummed
backups of the job database, outputs and voice references (docs/backup.md).

- :mod:`~steadyvoice.backup.snapshot`: the database at one instant, and the files it records;
- :mod:`~steadyvoice.backup.manifest`: what a backup holds, and how a destination is laid out;
- :mod:`~steadyvoice.backup.destinations`: a local folder or ``s3://bucket/prefix``;
- :mod:`~steadyvoice.backup.catalog`: the finished backups in a destination, and their manifests;
- :mod:`~steadyvoice.backup.create`, :mod:`~steadyvoice.backup.verify`,
  :mod:`~steadyvoice.backup.restore`: the three commands (:mod:`~steadyvoice.backup.commands`).
"""
