"""What a job from the network may do: :func:`job_problems` validates a submitted job exactly as
``portl validate`` does, then refuses, each as a problem located in the text, what an untrusted
job may not do unless an admin allowed it for the tenant:

- ``script`` and ``python`` hooks, which run code on the service's machines (``code_hooks``);
- local paths that are absolute or climb out of the tenant's files folder with ``..``
  (``local_files``);
- AWS Lambda calls (``lambda`` hooks and flow connections) without keys of their own: boto3 would
  sign them with the service's own AWS credentials, which only a tenant trusted to run code on
  the service's machines could reach anyway (``code_hooks``). With its own keys a lambda hook is
  allowed like an http hook: it reaches the network and runs nothing here;
- ``s3://`` paths of file connectors without keys of their own (or naming a ``profile``, which is
  read from the service's files), for the same reason (``code_hooks``);
- Google Sheets without a credentials file or API key of the job's own (Google's Application
  Default Credentials are the service's), for the same reason (``code_hooks``); Snowflake's
  ``externalbrowser`` login, which would open a browser on the service's machine, always;
- credentials, certificate and key files (``credentials``, ``ca_certs``, ``private_key_file``)
  and the quality reports a job writes (``reports: {json, junit, html}``) are local paths like
  ``path``: inside the tenant's files folder unless ``local_files``;
- HTTP hooks, API calls, Lambda endpoints, API endpoints (``endpoint``), search cluster nodes
  (``hosts``; none means 127.0.0.1:9200) and database hosts on loopback, private, link-local or
  otherwise non-public addresses (``private_network``). Host names are resolved here: a name is judged by
  the addresses it resolves to, never by how it reads. A PostgreSQL or MySQL connection without a
  host means 127.0.0.1, so it is refused too.

The API calls this before it accepts a job; the runner calls it again before it runs one.
A job's ``${env:NAME}`` is never filled from the service's environment: the service's secrets are
not the tenant's.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from portl.errors import ConfigError, Problem

__all__ = ["Allowances", "JOB_FILE_NAME", "allowances_of", "job_problems", "url_problems"]

JOB_FILE_NAME = "job.yaml"
"""What messages call a submitted job's text (problems say ``job.yaml:3:5``)."""

_CODE_HOOKS = ("script", "python")
_PATH_KEYS = ("path", "credentials", "ca_certs", "private_key_file")  # files a connector reads
_REPORT_KEYS = ("json", "junit", "html")  # reports: {json: PATH, ...}
_URL_PATH_TYPES = ("api.call",)  # their path is added to a connection's base_url: not a file
_URL_KEYS = ("url", "base_url", "endpoint_url", "endpoint")
_URL_LIST_KEYS = ("hosts",)  # a search cluster's nodes
_NO_HOST_MEANS_LOOPBACK = {"elasticsearch": "http://127.0.0.1:9200", "opensearch": "http://127.0.0.1:9200"}
_DATABASES = ("postgres", "mysql")
_Path = tuple[Any, ...]


@dataclass(frozen=True)
class Allowances:
    """What an admin allowed a tenant's jobs beyond the default of nothing."""

    local_files: bool = False
    code_hooks: bool = False
    private_network: bool = False


def allowances_of(tenant: Any) -> Allowances:
    """The allowances of a tenant row (``allow_local_files``...), a verified caller or tenant
    listing (``local_files``...), or :class:`Allowances` itself."""
    if isinstance(tenant, Allowances):
        return tenant
    def flag(name: str) -> bool:
        return bool(getattr(tenant, name, getattr(tenant, f"allow_{name}", False)))
    return Allowances(flag("local_files"), flag("code_hooks"), flag("private_network"))


Resolver = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def job_problems(job_text: str, tenant: Any, files_dir: str | None = None,
                 resolve: Resolver = resolve_host) -> list[Problem]:
    """Every problem of ``job_text`` (a v1 job file or a v2 flow) for ``tenant``: invalid as a job
    first (then nothing else is checked), else what the tenant may not do. Empty: it may run.

    ``files_dir`` is the tenant's files folder: what relative paths are relative to, and where a
    ``connections.yaml`` of the tenant's would be found."""
    from portl.spec.loader import JobText, file_version, job_names, load_job
    from portl.spec.connections import DEFAULT_FILE
    from portl.spec.positions import parse_yaml

    name = os.path.join(files_dir, JOB_FILE_NAME) if files_dir else JOB_FILE_NAME
    source = JobText(name, job_text, piped=files_dir is None)
    try:
        if file_version(source) == 2:
            from portl.spec.flow import load_flow

            load_flow(source, environ={})
        else:
            for job in job_names(source):
                load_job(source, job, environ={})
    except ConfigError as exc:
        return [_relative(p, name, files_dir) for p in exc.problems] or [Problem(str(exc), JOB_FILE_NAME)]
    check = _Checker(allowances_of(tenant), resolve)
    texts = [(JOB_FILE_NAME, job_text)]
    # Named connections the job does not define come from the tenant's connections file: what
    # they lead to is checked as if the job had written it.
    shared = os.path.join(files_dir, DEFAULT_FILE) if files_dir else None
    if shared and os.path.isfile(shared):
        with open(shared, encoding="utf-8-sig") as handle:
            texts.append((DEFAULT_FILE, handle.read()))
    problems = []
    for shown, text in texts:
        parsed = parse_yaml(text, shown)
        problems += [parsed.positions.problem(path, message, at_key=at_key)
                     for path, message, at_key in check.walk(parsed.data, ())]
    return sorted(problems, key=lambda p: (p.file != JOB_FILE_NAME, p.line or 0, p.column or 0))


def url_problems(url: str, tenant: Any, resolve: Resolver = resolve_host) -> list[str]:
    """Why the service may not call ``url`` for ``tenant`` (a webhook, say): the same address
    checks as a job's URLs get, each as a message. Empty: it may."""
    if allowances_of(tenant).private_network:
        return []
    return [message for _path, message, _at_key in _Checker(allowances_of(tenant), resolve)._url((), url)]


def _relative(problem: Problem, name: str, files_dir: str | None) -> Problem:
    """``problem`` as the tenant should read it: the service's folders are no business of theirs."""
    message = problem.message.replace(os.path.join(files_dir, ""), "") if files_dir else problem.message
    file = problem.file
    if file in (name, None):
        file = JOB_FILE_NAME
    elif files_dir and file.startswith(os.path.join(files_dir, "")):
        file = os.path.relpath(file, files_dir)
    return Problem(message, file, problem.line, problem.column)


class _Checker:
    def __init__(self, allowed: Allowances, resolve: Resolver):
        self.allowed = allowed
        self.resolve = resolve

    def walk(self, node: Any, path: _Path) -> Iterator[tuple[_Path, str, bool]]:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from self.walk(item, path + (index,))
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in _CODE_HOOKS and not self.allowed.code_hooks:
            yield (path + ("type",), f"{kind} hooks run code on the service's machines, which this tenant "
                   "is not allowed; ask an admin for `portl tenants allow TENANT --code-hooks`, or use an http hook", False)
        if (kind == "lambda" and not (node.get("access_key_id") and node.get("secret_access_key"))
                and not self.allowed.code_hooks):
            yield (path + ("type",), "a lambda call without access_key_id and secret_access_key would use the "
                   "service's own AWS credentials, which this tenant may not; give the tenant's own keys, or ask an "
                   "admin for `portl tenants allow TENANT --code-hooks`", False)
        where = node.get("path")
        if (isinstance(where, str) and where[:5].lower() == "s3://" and not self.allowed.code_hooks
                and not (node.get("aws_access_key_id") and node.get("aws_secret_access_key") and not node.get("profile"))):
            yield (path + ("path",), "an s3:// path without aws_access_key_id and aws_secret_access_key (or with a "
                   "profile) would use the service's own AWS credentials, which this tenant may not; give the tenant's "
                   "own keys, or ask an admin for `portl tenants allow TENANT --code-hooks`", False)
        if kind == "gsheet" and not node.get("credentials") and not node.get("api_key") and not self.allowed.code_hooks:
            yield (path + ("type",), "a gsheet connection without credentials or api_key would use the service's own "
                   "Google credentials, which this tenant may not; upload the tenant's service-account file and name it "
                   "in credentials, or ask an admin for `portl tenants allow TENANT --code-hooks`", False)
        if kind == "snowflake" and str(node.get("authenticator", "")).lower() == "externalbrowser":
            yield (path + ("authenticator",), "authenticator externalbrowser opens a browser on the machine that runs "
                   "the job, which the service cannot do; use a password, a key pair or an OAuth token", False)
        if (kind in _NO_HOST_MEANS_LOOPBACK and not node.get("hosts") and not node.get("url")
                and not self.allowed.private_network):
            yield (path + ("type",), f"an {kind} connection without hosts or url connects to "
                   f"{_NO_HOST_MEANS_LOOPBACK[kind]}, a loopback address this tenant may not reach; give the "
                   "cluster's public URL", False)
        if kind in _DATABASES and not node.get("host") and not node.get("url") and not self.allowed.private_network:
            yield (path + ("type",), f"a {kind} connection without host or url connects to 127.0.0.1, a loopback "
                   "address this tenant may not reach; give the database server's public host", False)
        for key, value in node.items():
            here = path + (key,)
            if (key in _PATH_KEYS and isinstance(value, str) and kind not in _URL_PATH_TYPES
                    and not self.allowed.local_files):
                yield from self._path(here, value)
            elif key in _REPORT_KEYS and path[-1:] == ("reports",) and isinstance(value, str) \
                    and not self.allowed.local_files:  # quality reports are files the job writes
                yield from self._path(here, value)
            elif key in _URL_KEYS and isinstance(value, str) and not self.allowed.private_network:
                yield from self._url(here, value)
            elif key in _URL_LIST_KEYS and isinstance(value, list) and not self.allowed.private_network:
                for index, item in enumerate(value):
                    if isinstance(item, str):
                        yield from self._url(here + (index,), item)
            elif key == "host" and isinstance(value, str) and not self.allowed.private_network:
                yield from self._host(here, value, value)
            else:
                yield from self.walk(value, here)

    def _path(self, here: _Path, value: str) -> Iterator[tuple[_Path, str, bool]]:
        if value == ":memory:":
            return
        ask = "; ask an admin for `portl tenants allow TENANT --local-files` to use other paths"
        if value.startswith(("/", "\\", "~")) or (len(value) > 1 and value[1] == ":"):
            yield (here, f"{value!r} is an absolute path; a job may only use paths relative to its files "
                   f"folder (e.g. data/in.csv){ask}", False)
        elif posixpath.normpath(value.replace("\\", "/")).split("/")[0] == "..":
            yield (here, f"{value!r} leads out of the job's files folder with '..'; a job may only use paths "
                   f"inside it{ask}", False)

    def _url(self, here: _Path, value: str) -> Iterator[tuple[_Path, str, bool]]:
        netloc = (value.split("://", 1)[1] if "://" in value else value).split("/", 1)[0]
        if "{{" in netloc or "{%" in netloc:
            yield (here, "the host of this URL is a template, so the service cannot check where it leads; "
                   "write the host out (a template may follow it in the path)", False)
            return
        try:
            host = urlsplit(value).hostname
        except ValueError:
            host = None
        if not host:
            if "://" in value:  # a database URL over a local socket: postgresql:///db
                yield (here, "this URL names no host, so it connects on this machine; give the server's public host",
                       False)
            return
        yield from self._host(here, host, value)

    def _host(self, here: _Path, host: str, shown: str) -> Iterator[tuple[_Path, str, bool]]:
        from portl.secrets import mask_url

        where = mask_url(shown) if shown != host else repr(host)
        if host.startswith("/"):
            yield (here, f"{where} is a local socket; give the server's public host", False)
            return
        try:
            addresses = [host.strip("[]")] if _is_address(host) else self.resolve(host)
        except (OSError, UnicodeError):
            yield (here, f"host {host!r} of {where} does not resolve, so the service cannot check that it is "
                   "public; use a host name that resolves (or its public address)", False)
            return
        private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
        if private:
            via = "" if _is_address(host) else f" (host {host!r} resolves to it)"
            yield (here, f"{where} leads to {', '.join(private)}{via}, a loopback, private or link-local address "
                   "this tenant may not reach; ask an admin for `portl tenants allow TENANT --private-network`", False)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True
