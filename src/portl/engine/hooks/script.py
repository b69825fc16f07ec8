"""``script`` hooks: run a command with the payload or row as JSON on stdin; the exit code decides."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from portl.engine.hooks.base import DROPPED_BY_HOOK, Drop, HookContext, RowVerdict, hook_label, seconds, to_json_bytes
from portl.errors import HookError
from portl.secrets import mask_url
from portl.spec.models import ScriptHook

DROP_EXIT_CODE = 3
_STDERR_LINES = 5
_POSIX = os.name == "posix"


@dataclass(frozen=True)
class _Finished:
    code: int
    stdout: bytes
    stderr: bytes


def command_text(hook: ScriptHook) -> str:
    """The command as a user would type it, with URL passwords masked."""
    text = hook.command if isinstance(hook.command, str) else shlex.join(hook.command)
    return mask_url(text)


def describe(hook: ScriptHook) -> str:
    """The plan's line: ``script: ./notify.sh (timeout 30 s)``; env values are never shown."""
    env = f", env: {', '.join(hook.env)}" if hook.env else ""
    return f"script: {command_text(hook)} (timeout {seconds(hook.timeout_s)} s{env})"


class ScriptCall:
    """One ``script`` hook bound to its event and position."""

    def __init__(self, hook: ScriptHook, event: str, index: int, context: HookContext):
        self.hook = hook
        self.event = event
        self.context = context
        shown = command_text(hook)
        short = shown if len(shown) <= 60 else shown[:57] + "..."
        self.label = hook_label(event, index, f"script {short!r}")
        self._env = {
            **os.environ,
            **hook.env,
            "PORTL_JOB": context.job,
            "PORTL_RUN_ID": context.run_id,
            "PORTL_EVENT": event,
        }

    def on_event(self, payload: dict[str, Any]) -> None:
        finished = self._run(to_json_bytes(payload), self._env, "")
        if finished.code != 0:
            raise HookError(self._exit_message(finished, ""))

    def on_row(self, row: dict[str, Any], where: str, outcome: dict[str, Any] | None = None) -> RowVerdict:
        env = self._env if outcome is None else {**self._env, "PORTL_OUTCOME": json.dumps(outcome, default=str)}
        suffix = f" ({where})"
        finished = self._run(to_json_bytes(row), env, suffix)
        if finished.code == DROP_EXIT_CODE and self.event == "before_row":
            return Drop(_first_line(finished.stderr) or DROPPED_BY_HOOK)
        if finished.code != 0:
            raise HookError(self._exit_message(finished, suffix))
        if self.event != "before_row":
            return None
        text = finished.stdout.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        try:
            replacement = json.loads(text)
        except ValueError:
            replacement = None
        if not isinstance(replacement, dict):
            raise HookError(
                f"{self.label} printed something that is not a JSON object{suffix}: {text[:200]!r}; print the "
                "changed row as one JSON object, or nothing to keep the row as it is"
            )
        return replacement

    def close(self) -> None:
        pass

    # --- running the process ---------------------------------------------------------------

    def _run(self, stdin: bytes, env: dict[str, str], suffix: str) -> _Finished:
        command = self.hook.command
        try:
            process = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                cwd=self.context.base_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=_POSIX,  # its own process group, so a timeout stops its children too
            )
        except FileNotFoundError as exc:
            if not os.path.isdir(self.context.base_dir):
                raise HookError(f"{self.label}: the job folder {self.context.base_dir} does not exist{suffix}") from exc
            raise HookError(
                f"{self.label}: command not found: {command[0]!r} (looked on PATH and in {self.context.base_dir}){suffix}"
            ) from exc
        except PermissionError as exc:
            raise HookError(f"{self.label}: {command[0]!r} is not executable; try chmod +x{suffix}") from exc
        except OSError as exc:
            raise HookError(f"{self.label} could not start: {exc}{suffix}") from exc
        try:
            stdout, stderr = process.communicate(stdin, timeout=self.hook.timeout_s)
        except subprocess.TimeoutExpired:
            self._stop(process)
            self._reap(process)
            raise HookError(
                f"{self.label} timed out after {seconds(self.hook.timeout_s)} s and was stopped{suffix}; "
                "raise timeout_s if it needs longer"
            ) from None
        except BaseException:
            self._stop(process)
            self._reap(process)
            raise
        return _Finished(process.returncode, stdout, stderr)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        try:
            if _POSIX:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            # A child that left the process group still holds the pipes; stop waiting for it.
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe:
                    pipe.close()
            process.wait()

    def _exit_message(self, finished: _Finished, suffix: str) -> str:
        stderr = _last_lines(finished.stderr)
        detail = f": {stderr}" if stderr else " (nothing on stderr)"
        if finished.code < 0:
            try:
                name = signal.Signals(-finished.code).name
            except ValueError:
                name = str(-finished.code)
            return f"{self.label} was killed by signal {name}{suffix}{detail}"
        if isinstance(self.hook.command, str) and finished.code == 127:
            return f"{self.label}: command not found (exit code 127, run by the shell in {self.context.base_dir}){suffix}{detail}"
        if isinstance(self.hook.command, str) and finished.code == 126:
            return f"{self.label}: command is not executable (exit code 126); try chmod +x{suffix}{detail}"
        hint = ""
        if finished.code == DROP_EXIT_CODE and self.event != "before_row":
            hint = f"; exit code {DROP_EXIT_CODE} drops a row only in before_row hooks"
        return f"{self.label} exited with code {finished.code}{suffix}{detail}{hint}"


def _first_line(data: bytes) -> str:
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _last_lines(data: bytes) -> str:
    lines = [line.rstrip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    text = "\n".join(lines[-_STDERR_LINES:])
    return text if len(text) <= 1000 else "..." + text[-1000:]
