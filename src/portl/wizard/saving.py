"""Saving the job: where to, append or overwrite, its name, and the checked, atomic write.

Before anything is written, the whole file as it will be (the new job alone, or the existing
file with the job added) is loaded with :func:`portl.spec.loader.load_job` from a temporary
folder, exactly as ``portl validate`` and ``portl run`` will load it; that loaded job is what the
plan is made from. The file itself is written only after the last question, in one atomic
rename, so stopping the wizard at any question leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from portl.engine.mapping import normalise_name
from portl.errors import ConfigError, PortlError
from portl.spec.loader import LoadedJob, job_names, load_job
from portl.wizard import discover
from portl.wizard.compose import ColumnSetting, job_data
from portl.wizard.interview import Interview, Question
from portl.wizard.jobfile import append_job, appendable, job_text
from portl.wizard.checks import choice, resolved_path, text, yes_no
from portl.wizard.locations import base_name

TMP_SUFFIX = ".portl-tmp"


def _output_check(value: Any, iv: Interview) -> str:
    path = text(value, "the job file path")
    full = resolved_path(path, iv.cwd, iv.environ)
    if os.path.isdir(full):
        raise ValueError(f"{path} is a folder; give the path of the job file, e.g. {os.path.join(path, 'job.yaml')}")
    folder = os.path.dirname(full)
    if not os.path.isdir(folder):
        raise ValueError(f"folder {os.path.dirname(path)} does not exist; create it first")
    iv.facts.pop("existing_names", None)
    return path


def _exists(iv: Interview) -> bool:
    output = iv.value("output")
    full = resolved_path(output, iv.cwd, iv.environ)
    return os.path.isfile(full) and os.path.getsize(full) > 0


def _if_exists_check(value: Any, iv: Interview) -> str:
    if isinstance(value, bool):  # --append/--overwrite
        value = "append" if value else "overwrite"
    chosen = choice(value, ["append", "overwrite"])
    if chosen == "append":
        full = resolved_path(iv.value("output"), iv.cwd, iv.environ)
        try:
            with open(full, encoding="utf-8-sig") as handle:
                existing = handle.read()
            appendable(existing, iv.value("output"))
            iv.facts["existing_names"] = job_names(full)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {iv.value('output')}: {exc}") from None
        except ConfigError as exc:
            raise ValueError(f"cannot append to {iv.value('output')}: {exc}") from None
    else:
        iv.facts["existing_names"] = []
    return chosen


def _taken(iv: Interview) -> list[str]:
    return list(iv.facts.get("existing_names") or []) if iv.answers.get("if_exists") == "append" else []


def job_base(iv: Interview) -> str:
    """A job is named after its destination table, else after its source."""
    table = iv.answers.get("destination_table")
    return normalise_name(str(table).rsplit(".", 1)[-1]) if table else base_name(iv)


def _output_default(iv: Interview) -> str:
    given = iv.given.get("name")  # asked after the file, but a name given ahead names the file too
    return f"{given.strip() if isinstance(given, str) and given.strip() else job_base(iv)}.yaml"


def _name_default(iv: Interview) -> str:
    base, taken, number = job_base(iv), _taken(iv), 2
    name = base
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name


def _name_check(value: Any, iv: Interview) -> str:
    name = text(value, "the job name")
    if name in _taken(iv):
        raise ValueError(f"{iv.value('output')} already has a job named {name!r}; choose another name "
                         f"(its jobs: {', '.join(_taken(iv))})")
    return name


def save_questions() -> dict[str, Question]:
    """The questions of the last step: the file, what to do when it exists, the name, run now."""
    return {q.key: q for q in (
        Question("output", "Save the job as", default=_output_default, check=_output_check,
                 flag_name="--output"),
        Question("if_exists", "The file exists: append this job to it, or overwrite it", kind="choice",
                 default=lambda iv: "append", choices=lambda iv: ["append", "overwrite"], check=_if_exists_check,
                 applies=_exists, flag_name="--append/--overwrite",
                 hint="append: the file holds several jobs, and `portl run FILE --job NAME` picks one."),
        Question("name", "Job name", default=_name_default, check=_name_check),
        Question("run", "⚡ Here's the job plan. Run now?", kind="bool", default=lambda iv: False,
                 check=lambda v, iv: yes_no(v), flag_name="--run/--no-run", shown=lambda v: "y" if v else "n"),
    )}


# --- the file ----------------------------------------------------------------------------------


@dataclass
class Prepared:
    """The file about to be written, checked: its text, the new job's own text, the loaded job."""

    path: str
    text: str
    entry: str
    loaded: LoadedJob
    appended: bool
    comments_kept: bool
    connections_note: str | None = None
    hook_notes: tuple[str, ...] = ()


def prepare(iv: Interview, columns: list[ColumnSetting], table_exists: bool | None) -> Prepared:
    """Compose the job for where it is saved, add it to the existing file when appending, and
    load the result as a run would. Raises ConfigError when it does not load."""
    output = iv.value("output")
    full = os.path.abspath(resolved_path(output, iv.cwd, iv.environ))
    job_dir = os.path.dirname(full)
    appended = iv.answers.get("if_exists") == "append" and os.path.isfile(full) and os.path.getsize(full) > 0
    data = job_data(iv.answers, columns, job_dir, iv.cwd)
    shown_name = os.path.relpath(full, iv.cwd) if not os.path.relpath(full, iv.cwd).startswith("..") else full
    entry = job_text(data, shown_name, several=appended, table_exists=table_exists)
    text_out, kept = entry.text, True
    if appended:
        with open(full, encoding="utf-8-sig") as handle:
            text_out, kept = append_job(handle.read(), output, entry)
    connections, note = _connections_for(iv, data, job_dir)
    loaded = validate_text(text_out, data["name"], full, connections, iv.environ)
    return Prepared(full, text_out, entry.text, loaded, appended, kept, note,
                    tuple(missing_hook_targets(data.get("hooks") or {}, job_dir)))


def missing_hook_targets(hooks: dict[str, Any], job_dir: str) -> list[str]:
    """A note for each script or Python module a hook names that is not there yet. Not an error:
    the hook may well be written after the job, but a typo is cheaper to see now than at run time."""
    notes = []
    for event, hook in hooks.items():
        if hook.get("type") == "python":
            module = hook["function"].partition(":")[0].split(".")[0]
            beside = os.path.join(job_dir, module)
            found = (os.path.isfile(beside + ".py") or os.path.isdir(beside)
                     or importlib.util.find_spec(module) is not None)
            if not found:
                notes.append(f"{event} hook: no module {module} beside the job file ({module}.py) or on the Python "
                             "path yet; the run imports it from there")
        elif hook.get("type") == "script":
            command = hook["command"] if isinstance(hook["command"], list) else _split(hook["command"])
            program = command[0] if command else ""
            if "/" in program:
                found = os.path.exists(os.path.join(job_dir, os.path.expanduser(program)))
            else:
                found = not program or shutil.which(program) is not None
            if not found:
                notes.append(f"{event} hook: {program} is not there yet; the run starts it from the job file's folder")
    return notes


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # an unclosed quote: the run reports it
        return []


def draft(iv: Interview, columns: list[ColumnSetting]) -> LoadedJob:
    """The job as it stands, loaded as if saved in the current folder (for the dry run)."""
    name = iv.answers.get("name") or base_name(iv)
    data = job_data({**iv.answers, "name": name}, columns, iv.cwd, iv.cwd)
    connections, _ = _connections_for(iv, data, iv.cwd)
    text_out = job_text(data, f"{name}.yaml").text
    return validate_text(text_out, name, os.path.join(iv.cwd, f"{name}.yaml"), connections, iv.environ)


def validate_text(text_in: str, name: str, final_path: str, connections: str | None, environ) -> LoadedJob:
    """Load ``text_in`` as the job file ``final_path`` would load, without writing there."""
    with tempfile.TemporaryDirectory(prefix="portl-init-") as folder:
        probe = os.path.join(folder, os.path.basename(final_path))
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write(text_in)
        try:
            loaded = load_job(probe, name, connections, environ=environ)
        except ConfigError as exc:
            # The problems name the temporary file; the user knows it by its final name.
            raise ConfigError(str(exc).replace(probe, final_path)) from None
    return dataclasses.replace(loaded, path=final_path, base_dir=os.path.dirname(final_path))


def _connections_for(iv: Interview, data: dict[str, Any], job_dir: str) -> tuple[str | None, str | None]:
    """The connections file the job needs, and a note when a run would not find it by itself."""
    named = [s if isinstance(s, str) else s.get("connection") for s in (data["source"], data["destination"])]
    if not any(named):
        return iv.connections_file, None
    found_by_run = discover.connections_file(None, iv.environ, job_dir)
    if found_by_run and iv.connections_file and os.path.samefile(found_by_run, iv.connections_file):
        return iv.connections_file, None
    shown = os.path.relpath(iv.connections_file, iv.cwd) if iv.connections_file else "a connections file"
    return iv.connections_file, (f"the job uses named connections from {shown}, which `portl run` finds only when "
                                 f"given --connections {shown} (or PORTL_CONNECTIONS)")


def write(prepared: Prepared) -> None:
    """Write the file in one atomic rename."""
    temporary = prepared.path + TMP_SUFFIX
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(prepared.text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, prepared.path)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise PortlError(f"cannot write {prepared.path}: {exc.strerror or exc}") from exc
