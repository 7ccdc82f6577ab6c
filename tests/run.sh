#!/usr/bin/env bash
# Runs the whole test suite. Installs the OS tools the real-peer tests need when they are
# missing (apt-get, as root); otherwise stops and names them.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

# command:package pairs for every real peer the tests drive (a /path instead of a command: a file
# the package installs). PostgreSQL's server binaries live in /usr/lib/postgresql/<version>/bin
# (off PATH; tests/_support/postgres.ts finds them), so its package is recognised by
# postgresql-common's pg_ctlcluster. Roundcube (tests/e2e/roundcube_test.ts) runs under PHP's
# built-in server with SQLite (roundcube-sqlite3 brings php-sqlite3), driven by headless Chromium
# through chromedriver; about 70 packages, about a minute to install here.
tools=(
  openssl:openssl gnutls-cli:gnutls-bin python3:python3 curl:curl
  slapd:slapd ldapmodify:ldap-utils dovecot:dovecot-imapd mbsync:isync
  fetchmail:fetchmail tstclnt:libnss3-tools
  swaks:swaks postfix:postfix prometheus:prometheus
  pg_ctlcluster:postgresql haproxy:haproxy
  chromium:chromium chromedriver:chromium-driver php:php-cli
  /usr/share/roundcube/index.php:roundcube-core /usr/share/doc/roundcube-sqlite3:roundcube-sqlite3
)
missing=()
for pair in "${tools[@]}"; do
  probe=${pair%%:*}
  if [[ $probe == /* ]]; then
    [[ -e $probe ]] || missing+=("${pair#*:}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${pair#*:}")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing missing test tools: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Debian's slapd, dovecot and prometheus start system daemons on install; the tests start
    # their own.
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [[ -e $policy ]] && had_policy=1
    ((had_policy)) || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"; }
    # Postfix asks which mail setup to write; the LMTP test writes its own private instance.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null
    # Roundcube's package would create a system database through dbconfig-common; the test makes
    # its own in a temporary folder. (php8.2 also pulls apache2-bin, which has no service.)
    echo "roundcube-core roundcube/dbconfig-install boolean false" | debconf-set-selections 2>/dev/null
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    installed=$?
    ((had_policy)) || rm -f "$policy"
    ((installed == 0)) || { echo "apt-get could not install: ${missing[*]}" >&2; exit 2; }
  else
    echo "Missing test tools (install these Debian packages): ${missing[*]}" >&2
    exit 2
  fi
fi

if command -v deno >/dev/null 2>&1; then DENO=(deno); else DENO=(npx -y deno@2.9.6); fi
exec "${DENO[@]}" test --allow-all --parallel "${@:-tests/}"
