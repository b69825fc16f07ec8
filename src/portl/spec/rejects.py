"""Where a job's rejected rows go, and whether that file can be written there.

A reject file is created on the first reject, in the middle of a run: a path that cannot be
created then would stop the run after batches were committed. So the path is checked when the job
loads, and a path that cannot work is a problem of the job file, at its ``rejects.path`` key.
"""

from __future__ import annotations

import os

from portl.spec.models import JobBase


def reject_path(job: JobBase, name: str, base_dir: str) -> str:
    """The reject file's absolute path: ``rejects.path`` (relative to the job's folder) or
    ``<job name>.rejects.csv`` beside the job file."""
    configured = job.rejects.path
    if configured:
        path = os.path.expanduser(configured)
        return path if os.path.isabs(path) else os.path.join(base_dir, path)
    return os.path.join(base_dir, f"{name}.rejects.csv")


def reject_path_problem(job: JobBase, base_dir: str) -> str | None:
    """Why the configured ``rejects.path`` cannot be written, or None (also when none is configured)."""
    if not job.rejects.path:
        return None
    path = reject_path(job, "", base_dir)
    why = _unwritable(path)
    return f"rejects.path: the reject file {path} cannot be created: {why}" if why else None


def default_path_warning(job: JobBase, name: str, base_dir: str) -> str | None:
    """Why the default reject file (no ``rejects.path``) cannot be written, as a warning: a run
    with no rejected row never needs it."""
    if job.rejects.path:
        return None
    path = reject_path(job, name, base_dir)
    why = _unwritable(path)
    return (f"rejected rows would go to {path}, which cannot be created: {why}; set rejects.path to a file in a "
            "folder you can write") if why else None


def _unwritable(path: str) -> str | None:
    if os.path.isdir(path):
        return "it is a folder; give a file name, e.g. rejects.csv inside it"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "the file exists and this user cannot write it; change its permissions or give another path"
    folder = os.path.dirname(path)
    while folder and not os.path.exists(folder):  # missing folders are made; the nearest existing one decides
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if not os.path.isdir(folder):
        return f"{folder} is a file, not a folder; give a path whose folders are folders"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"this user cannot write in folder {folder}; change its permissions or give another path"
    return None
