"""Flows of steps (job files with ``version: 2``): templated, sequential, in one DB transaction.

The package, each module doing one thing:

- ``templating``: the sandboxed Jinja environment, its helpers, and what a failed template says;
- ``checks``: templates checked before anything runs (syntax, variables, ``steps.*`` references);
- ``context``: the values templates see (``steps``, the batch item, ``idx``) and saved results;
- ``sql``: SQL statements of the ``db.*`` steps for Postgres and MySQL, values always bound;
- ``actions``: what each step type does, the same code for a run and for a dry-run (``csv.read``,
  ``migrate``); ``database``: the flow's database session, its transaction and the ``db.*`` steps;
  ``remote``: ``api.call``, ``lambda.invoke`` and ``outbox.enqueue``;
- ``walk``: the walk through the steps, the same for a run and a dry-run;
- ``runner``: :func:`run_flow`: the live run, its commits, the delivery after commit, the ledger;
- ``plan``: :func:`plan_flow`, the dry-run: renders everything, calls nothing, writes nothing;
- ``events``: structured run events ``{ts, level, run_id, step_id, idx, event, details}``;
- ``calls``, ``idempotency``, ``outbox``: HTTP and Lambda calls, their keys, and the outbox.

Nothing here is imported by ``import portl``; drivers and boto3 are imported when a flow needs them.
"""
