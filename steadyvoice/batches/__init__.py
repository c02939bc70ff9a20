"""Batches: many jobs in one request (docs/batches.md).

``models`` (the ``batches`` and ``batch_items`` tables), ``rows`` (parsing an upload into rows,
every bad row reported), ``service`` (validation through the single-job checks, then one
all-or-nothing insert), ``store`` (reads, cancel, retry), ``progress`` (counts, rate, ETA),
``archive`` (the ZIP streamed as it is built), ``client`` and ``commands`` (``steadyvoice batch``).
"""
