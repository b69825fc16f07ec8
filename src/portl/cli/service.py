"""``portl service migrate``, ``portl tenants …`` and ``portl keys …``: the admin side of the
service, run on the machine that holds its state database (``PORTL_SERVICE_DATABASE``, or a
SQLite file in ``PORTL_HOME``). Every command creates or upgrades the schema first, so they work
on a fresh machine. SQLAlchemy and Alembic are imported only when one of them runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from portl.cli.output import Format, configure, err, out, print_json, settings
from portl.errors import ServiceError

if TYPE_CHECKING:
    from portl.service.store import Store
    from portl.service.tenants import NewKey

service_app = typer.Typer(help="Run the service's housekeeping: migrate its state database.",
                          no_args_is_help=True, rich_markup_mode=None)
tenants_app = typer.Typer(help="Create and list the service's tenants; allow them local files, code hooks "
                          "or private addresses; set their limits.", no_args_is_help=True, rich_markup_mode=None)
keys_app = typer.Typer(help="Create, list, revoke and rotate a tenant's API keys.", no_args_is_help=True,
                       rich_markup_mode=None)

OutputFormat = Annotated[Format, typer.Option("--format", help="text for people, or json for programs (errors too).", case_sensitive=False)]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", envvar="PORTL_DEBUG")]
TenantName = Annotated[str, typer.Argument(help="The tenant's name.", metavar="TENANT")]
KeyPrefix = Annotated[str, typer.Argument(help="The key's prefix, as `portl keys list` shows it (ptl_live_xxxxxxxx).", metavar="PREFIX")]


def _open() -> Store:
    from portl.service.store import open_store

    store = open_store()
    if store.migrated.changed:
        err.print(f"state database {escape(store.settings.shown_database)} upgraded to schema revision "
                  f"{store.migrated.after}")
    return store


@service_app.command("migrate")
def migrate(format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Create or upgrade the schema of the state database to this Portl's newest revision.

    The database is PORTL_SERVICE_DATABASE (a postgresql:// or sqlite:/// URL), else the SQLite
    file service.db in PORTL_HOME (default: .portl here). Running it again changes nothing.
    """
    configure(debug=debug, format=format)
    from portl.service.store import open_store

    with open_store() as store:
        migrated, where = store.migrated, store.settings.shown_database
    if settings.json:
        print_json({"database": where, "revision": migrated.after, "previous_revision": migrated.before,
                    "changed": migrated.changed})
    elif migrated.changed:
        was = f"from revision {migrated.before}" if migrated.before else "from an empty database"
        out.print(f"state database {escape(where)} upgraded {was} to revision {migrated.after}")
    else:
        out.print(f"state database {escape(where)} is at revision {migrated.after}, the newest: nothing to do")


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="The new tenant's name: letters, digits, '_', '.', '-'.", metavar="NAME")],
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Create a tenant and print its first API key, which is shown this once only.

    The tenant's jobs may not read local files, run code hooks or reach private addresses until
    `portl tenants allow` says so.
    """
    configure(debug=debug, format=format)
    with _open() as store:
        made = store.tenants.create(name)
    _show_new_key(made, f"tenant {made.tenant!r} created")


@tenants_app.command("list")
def tenants_list(format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """List the tenants: id, what each is allowed, its limits, how many live keys it has and
    its files folder (where its jobs' relative paths point)."""
    configure(debug=debug, format=format)
    from portl.service.workspace import files_location

    with _open() as store:
        tenants = store.tenants.list()
        where = store.settings.shown_database
        folders = {t.id: str(files_location(store.settings, t.id)) for t in tenants}
    if settings.json:
        print_json([{**t.to_dict(), "files_dir": folders[t.id]} for t in tenants])
        return
    if not tenants:
        out.print(f"no tenants in {escape(where)}; `portl tenants create NAME` makes one")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    # "keys" counts the live ones, "jobs" is the most running at once; the folder, long, comes last.
    for column in ("id", "tenant", "created", "local files", "code hooks", "private net", "keys", "jobs", "req/min",
                   "files folder"):
        table.add_column(column, no_wrap=column not in ("tenant", "files folder"), overflow="fold",
                         justify="right" if column == "id" else "left")
    for t in tenants:
        table.add_row(str(t.id), escape(t.name), f"{t.created_at:%Y-%m-%d}", _yes(t.local_files), _yes(t.code_hooks),
                      _yes(t.private_network), str(t.live_keys), str(t.max_running_jobs), str(t.requests_per_minute),
                      escape(folders[t.id]))
    out.print(table)


@tenants_app.command("allow")
def tenants_allow(
    name: TenantName,
    local_files: Annotated[Optional[bool], typer.Option("--local-files/--no-local-files", help="Let its jobs read and write files on the service's machines.")] = None,
    code_hooks: Annotated[Optional[bool], typer.Option("--code-hooks/--no-code-hooks", help="Let its jobs run script and python hooks.")] = None,
    private_network: Annotated[Optional[bool], typer.Option("--private-network/--no-private-network", help="Let its jobs reach loopback and private addresses.")] = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Allow a tenant's jobs what the service refuses by default, or (--no-...) withdraw it.

    What is not named stays as it was; the tenant's allowances are printed afterwards.
    """
    configure(debug=debug, format=format)
    if local_files is None and code_hooks is None and private_network is None:
        raise typer.BadParameter("name what to allow or withdraw: --local-files, --code-hooks, --private-network "
                                 "(or their --no- forms)", param_hint="TENANT")
    with _open() as store:
        tenant = store.tenants.allow(name, local_files=local_files, code_hooks=code_hooks,
                                     private_network=private_network)
    if settings.json:
        print_json(tenant.to_dict())
        return
    shown = {"local files": tenant.local_files, "code hooks": tenant.code_hooks, "private network": tenant.private_network}
    allowed = [k for k, v in shown.items() if v]
    refused = [k for k, v in shown.items() if not v]
    out.print(f"tenant {escape(repr(tenant.name))}: allowed {', '.join(allowed) or 'nothing'}"
              + (f"; refused {', '.join(refused)}" if refused else ""))


def _limit(value: int | None) -> int | None:
    from portl.service.tenants import MAX_LIMIT

    if value is not None and not 1 <= value <= MAX_LIMIT:
        raise typer.BadParameter(f"{value} is not allowed: give a whole number from 1 to {MAX_LIMIT:,}")
    return value


@tenants_app.command("set")
def tenants_set(
    name: TenantName,
    max_running_jobs: Annotated[Optional[int], typer.Option("--max-running-jobs", help="The most of its jobs that run at once (default for a new tenant: 4).", metavar="N", callback=_limit)] = None,
    requests_per_minute: Annotated[Optional[int], typer.Option("--requests-per-minute", help="The most API requests it may make in a minute (default for a new tenant: 600).", metavar="N", callback=_limit)] = None,
    format: OutputFormat = Format.text,
    debug: Debug = False,
) -> None:
    """Set a tenant's limits: how many of its jobs run at once, how many API requests it may make
    a minute. Each is a whole number from 1 up; what is not named stays as it was.

    A new request limit applies to the tenant's next request; a new job limit to the next job
    that starts.
    """
    configure(debug=debug, format=format)
    if max_running_jobs is None and requests_per_minute is None:
        raise typer.BadParameter("name a limit to set: --max-running-jobs N, --requests-per-minute N",
                                 param_hint="TENANT")
    with _open() as store:
        tenant = store.tenants.set_limits(name, max_running_jobs=max_running_jobs,
                                          requests_per_minute=requests_per_minute)
    if settings.json:
        print_json(tenant.to_dict())
        return
    out.print(f"tenant {escape(repr(tenant.name))}: at most {tenant.max_running_jobs} running "
              f"job{'s' if tenant.max_running_jobs != 1 else ''} at once, {tenant.requests_per_minute} "
              f"request{'s' if tenant.requests_per_minute != 1 else ''} a minute")


@keys_app.command("create")
def keys_create(tenant: TenantName, format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Make another API key for a tenant (its other keys stay valid); shown this once only."""
    configure(debug=debug, format=format)
    with _open() as store:
        made = store.tenants.create_key(tenant)
    _show_new_key(made, f"new key {made.prefix} for tenant {made.tenant!r}")


@keys_app.command("list")
def keys_list(tenant: TenantName, format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """List a tenant's keys by prefix: created, last used, revoked. Never a key itself."""
    configure(debug=debug, format=format)
    with _open() as store:
        keys = store.tenants.keys(tenant)
    if settings.json:
        print_json([k.to_dict() for k in keys])
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("prefix", "created", "last used", "revoked"):
        table.add_column(column, no_wrap=True)
    for k in keys:
        table.add_row(k.prefix, _when(k.created_at), _when(k.last_used_at) or "never", _when(k.revoked_at) or "—")
    out.print(table if keys else f"tenant {escape(repr(tenant))} has no keys")


@keys_app.command("revoke")
def keys_revoke(prefix: KeyPrefix, format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Revoke a key: requests with it are refused from now on."""
    configure(debug=debug, format=format)
    with _open() as store:
        key, newly = store.tenants.revoke(prefix)
    if settings.json:
        print_json({**key.to_dict(), "newly_revoked": newly})
    elif newly:
        out.print(f"key {key.prefix} of tenant {escape(repr(key.tenant))} revoked")
    else:
        out.print(f"key {key.prefix} of tenant {escape(repr(key.tenant))} was already revoked on {_when(key.revoked_at)}")


@keys_app.command("rotate")
def keys_rotate(prefix: KeyPrefix, format: OutputFormat = Format.text, debug: Debug = False) -> None:
    """Replace a key: print a new key for its tenant (shown this once only) and revoke the old one."""
    configure(debug=debug, format=format)
    with _open() as store:
        made = store.tenants.rotate(prefix)
    _show_new_key(made, f"key {prefix} revoked; new key {made.prefix} for tenant {made.tenant!r}", replaced=prefix)



def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every interface.", envvar="PORTL_SERVE_HOST", metavar="ADDRESS")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (1 to 65535).", envvar="PORTL_SERVE_PORT", min=1, max=65535, metavar="PORT")] = 8080,
    debug: Debug = False,
) -> None:
    """Run the service's HTTP API, and the jobs submitted to it, until Ctrl-C or SIGTERM.

    The state database is migrated first. Jobs run in this process; on stop, running jobs stop
    after their batch in flight and are taken up again by the next `portl serve`. With
    PORTL_BROKER set, jobs are sent to `portl worker` processes instead.
    """
    import logging

    configure(debug=debug, format=Format.text)
    import uvicorn

    from portl.service.api import create_app
    from portl.service.executor import executor_for
    from portl.service.webhooks import Deliverer

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("portl").addHandler(handler)
    logging.getLogger("portl").setLevel(logging.INFO)
    shown = f"[{host}]" if ":" in host else host
    with _open() as store:
        listening = (f"Portl service listening on http://{shown}:{port} (state database "
                     f"{escape(store.settings.shown_database)}); API docs at http://{shown}:{port}/docs")
        executor = executor_for(store)
        deliverer = Deliverer(store)  # webhooks go out from here, whichever executor runs the jobs
        deliverer.start()
        try:
            server = _server_class(lambda: out.print(listening, soft_wrap=True))(
                uvicorn.Config(create_app(store, executor), host=host, port=port, log_level="warning",
                               server_header=False, timeout_graceful_shutdown=STOP_GRACE_S))
            try:
                server.run()
            except SystemExit:
                if server.started:
                    raise
                # uvicorn has logged why (address in use, no permission) and exits with its own code.
                raise ServiceError(f"could not listen on {shown}:{port}, as said above; pick another --port, "
                                   "or stop what listens there") from None
        finally:
            deliverer.stop()
            executor.close()
    out.print("Portl service stopped")


STOP_GRACE_S = 3
"""On stop, how long requests in progress may take to finish: an event stream of a running job
would otherwise hold the server (and the executor's close) until the job ends."""


def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Batches run at once, each in its own process.", envvar="PORTL_WORKER_CONCURRENCY", min=1, metavar="N")] = 2,
    queues: Annotated[str, typer.Option("--queues", "-Q", help="Comma-separated queues to take jobs from.", metavar="Q,...")] = "portl",
    debug: Debug = False,
) -> None:
    """Run the batches of jobs submitted to the service, taken from the broker PORTL_BROKER, until Ctrl-C.

    Every worker and `portl serve` must share one state database (PORTL_SERVICE_DATABASE) and
    PORTL_HOME (the tenants' uploaded files). Several workers, on one machine or several, load the
    batches of one job at once. On Ctrl-C or SIGTERM the worker finishes its running batches
    first; a batch whose worker was killed is run again by another worker, from its checkpoints.
    """
    import logging

    configure(debug=debug, format=Format.text)
    from portl.service.tasks import celery_app, check_broker

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    if not chosen:
        raise typer.BadParameter("name at least one queue, e.g. --queues portl", param_hint="--queues")
    app = celery_app()
    check_broker(app)
    with _open() as store:  # the schema is created or upgraded before any job is taken
        where = store.settings.shown_database
    # Celery's own logging shows Portl's messages (jobs resumed, failures) with the process that said them.
    logging.getLogger("portl").setLevel(logging.DEBUG if debug else logging.INFO)
    from portl.secrets import mask_url

    out.print(f"Portl worker taking jobs from {escape(mask_url(app.conf.broker_url))} (queues {escape(','.join(chosen))}, "
              f"{concurrency} at once; state database {escape(where)})", soft_wrap=True)
    import os

    # A name of its own (Celery's default is the host's): several workers on one machine are told
    # apart in /api/v1/workers and by Celery's inspection.
    app.worker_main(["--quiet", "worker", "--hostname", f"portl-{os.getpid()}@%h", "--pool", "prefork",
                     "--concurrency", str(concurrency), "--queues", ",".join(chosen),
                     "--loglevel", "DEBUG" if debug else "WARNING", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"])


def _server_class(on_started: Callable[[], None]) -> type:
    """uvicorn's server, except that it calls ``on_started`` once it listens, and that Ctrl-C or
    SIGTERM only stop it: uvicorn raises the signal again once it has stopped, which would kill
    the process before the executor is closed."""
    import contextlib
    import signal

    import uvicorn

    class StoppingServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                on_started()

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return StoppingServer


def _show_new_key(made: NewKey, what: str, replaced: str | None = None) -> None:
    """A new key: on stdout alone (``KEY=$(portl tenants create acme)`` works), or as JSON; the
    warning that it is shown only once goes to stderr."""
    if settings.json:
        document = {"tenant": made.tenant, "key_prefix": made.prefix, "api_key": made.api_key}
        if replaced:
            document["revoked_prefix"] = replaced
        print_json(document)
    else:
        err.print(f"{escape(what)}. Its API key is printed below, this once only: store it now "
                  "(a lost key cannot be shown again; `portl keys rotate PREFIX` replaces it).")
        out.print(made.api_key, soft_wrap=True)


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _yes(value: bool) -> str:
    return "yes" if value else "no"
