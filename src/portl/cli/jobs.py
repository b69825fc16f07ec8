"""The job commands' work beyond one job: ``portl run --all`` (every job of a file, in order,
stopping at the first failure) and ``portl validate`` (every job of a file, or flow)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.markup import escape

from portl.cli.output import err, out, print_json, settings


class JobsRun:
    """The jobs of one ``portl run``, and at the end, when ``shown`` (``--all``), which of them ran."""

    def __init__(self, names: list[str | None], *, shown: bool):
        self.names = names
        self.shown = shown
        self.ran: list[dict[str, Any]] = []

    @contextmanager
    def job(self, name: str | None) -> Iterator[None]:
        """Run one job; if it fails, the summary says so before the error propagates."""
        try:
            yield
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) or getattr(exc, "exit_code", None) == 130 else "failed"
            report = getattr(exc, "report", None)
            self.ran.append({"name": name, "status": status, "run_id": getattr(report, "run_id", None)})
            self.summary()
            raise

    def finished(self, name: str | None, report: Any) -> None:
        status = "planned" if report is None else report.status
        self.ran.append({"name": name, "status": status, "run_id": None if report is None else report.run_id})

    def summary(self) -> None:
        if not self.shown:
            return
        not_run = [n for n in self.names[len(self.ran):]]
        ok = all(r["status"] in ("succeeded", "planned") for r in self.ran)
        if settings.json:
            print_json({"event": "jobs", "status": "succeeded" if ok and not not_run else "failed", "jobs": self.ran,
                        "not_run": not_run}, lines=True)
            return
        done = ", ".join(f"{r['name']} {r['status']}" for r in self.ran)
        colour = "green" if ok and not not_run else "red"
        line = f"[{colour}]ran {len(self.ran)} of {len(self.names)} jobs[/]: {escape(done)}"
        if not_run:
            line += f"; not run: {escape(', '.join(str(n) for n in not_run))}"
        err.print(line, soft_wrap=True)


def validate_file(job_file: str, job: str | None, connections: str | None) -> None:
    """Check every job of the file (or the one named ``job``), or the flow it holds; print what
    each is, or raise the first invalid job's :class:`~portl.errors.ConfigError`."""
    from portl.spec.loader import file_version, job_names, load_job, read_job_file

    source = read_job_file(job_file)
    if file_version(source) == 2:
        from portl.cli import flows

        flows.reject_v1_options(**{"--job": job})
        checked = [flows.validate(source, connections)]
    else:
        checked = []
        for name in [job] if job else job_names(source):
            loaded = load_job(source, name, connections)
            j = loaded.job
            checked.append({
                "name": loaded.name, "kind": "job", "source": j.source.type, "destination": j.destination.type,
                "write_mode": j.write_mode.value, "conflict_key": list(j.conflict.key) if j.conflict else None,
                "conflict_strategy": j.conflict.strategy.value if j.conflict else None,
            })
    if settings.json:
        print_json({"file": source.name, "valid": True, "jobs": checked})
        return
    if settings.quiet:
        return
    for entry in checked:
        out.print(f"[green]ok[/] {escape(source.name)}: {entry['kind']} {entry['name']!r} is valid ({escape(_what(entry))})")


def _what(entry: dict[str, Any]) -> str:
    if entry["kind"] == "flow":
        database = f", transaction scope {entry['transaction_scope']} on {entry['database']}" if entry["database"] else ""
        return f"{entry['steps']} steps{database}"
    what = f"{entry['source']} -> {entry['destination']}, {entry['write_mode']}"
    if entry["conflict_key"]:
        what += f" on ({', '.join(entry['conflict_key'])}), strategy {entry['conflict_strategy']}"
    return what
