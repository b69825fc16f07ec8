"""Data-quality checks computed in a load's own pass over the data, and their reports.

``rowchecks`` runs the row-level checks vectorised on each Arrow batch; ``profile`` gathers the
statistics aggregate checks read (nulls, min/max, distinct estimates, rows per date); ``aggregate``
judges them at the end (with ``calendar``, ``anomaly``, ``uniqueness`` and destination SQL);
``gate`` ties them to a run; ``results`` is the one model every report is rendered from
(``reports``: JSON, JUnit XML, HTML).
"""
