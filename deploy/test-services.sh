#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the tests use are installed and answering on
# their standard loopback ports, and that Dovecot and Chromium are there; installs what is
# missing from Debian's packages on a bare machine.
set -euo pipefail

need_install=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_install+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_install+=(redis-server)
# Dovecot is the real IMAP server the IMAP polling test runs a private instance of.
command -v dovecot >/dev/null 2>&1 || need_install+=(dovecot-imapd)
# The browser tests drive Debian's Chromium (Playwright is told its path; nothing is downloaded).
[ -x /usr/bin/chromium ] || need_install+=(chromium fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || need_install+=(npm)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "Installing ${need_install[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "Starting PostgreSQL ..."
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# The tests connect as postgres over TCP without a password (trust on loopback, as on the CI image).
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1; then
  echo "PostgreSQL does not accept the postgres user on 127.0.0.1 without a password;" >&2
  echo "set RATHAUS_TEST_POSTGRES_URL to a superuser URL." >&2
  [ -n "${RATHAUS_TEST_POSTGRES_URL:-}" ] || exit 1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis ..."
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "PostgreSQL and Redis are up; Dovecot and Chromium are installed."
