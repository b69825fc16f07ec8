#!/bin/sh
# Install the reference tools the server benchmarks compare Portl with, when they are missing.
#
#   sh benchmarks/setup.sh            (as root, or with sudo on a Debian or Ubuntu machine)
#
# - pgloader (Debian package pgloader): the reference of the MySQL -> Postgres case (my-to-pg)
# - psql and mysql (postgresql-client, default-mysql-client): the references of the other cases
# - GNU time (time): peak RSS of each measured command
#
# Nothing is installed that is already on the PATH; the package lists are fetched only when
# something is missing. bench_servers.py prints a SKIP line for a case whose tool is still missing.
set -eu

missing=""
need() {  # need COMMAND PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        missing="$missing $2"
    fi
}

need pgloader pgloader
need psql postgresql-client
need mysql default-mysql-client
[ -x /usr/bin/time ] || missing="$missing time"

if [ -z "$missing" ]; then
    echo "benchmark tools: all present (pgloader, psql, mysql, GNU time)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing:$missing; install them with your system's package manager (apt-get is not available here)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "missing:$missing; run this script as root (or install sudo) to install them" >&2
        exit 1
    fi
fi

echo "installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # the package names are separate words on purpose
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
pgloader --version | head -n 1
