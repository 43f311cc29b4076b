#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: virtualenv, pinned packages, local services the tests need.
# Used by `make demo` and `make test`; safe to run again (it only reinstalls when constraints change).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv

# Debian packages: chromium for the browser tests of the Connections form; libmariadb-dev (+ pkg-config)
# to build mysqlclient for apache-airflow-providers-mysql. Installed only when missing.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
[ -f /usr/include/mariadb/mysql.h ] || missing+=(libmariadb-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: apt-get install ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: please install the Debian packages: ${missing[*]}" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.installed-$(cat constraints.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing pinned packages (constraints.txt)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi

if [ "${1:-}" = "--services" ]; then
    # PostgreSQL backs the async Postgres layer and the webhook/stream stores; start it when it is down.
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
            echo "bootstrap: starting PostgreSQL"
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
        fi
    fi
fi
