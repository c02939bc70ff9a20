"""Webhooks: a job's or a batch's ``callback_url`` is called when it finishes (docs/webhooks.md).

``urls`` (the URL and address checks against SSRF), ``signing`` (the HMAC-SHA256 header),
``transport`` (one POST to a pinned address), ``sender`` (the background round that finds what
is due, delivers, retries with backoff and records every attempt) and ``models``.
"""
