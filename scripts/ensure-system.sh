#!/usr/bin/env bash
# Install and start what the test suite needs from the system, on a fresh Debian machine.
# Idempotent and quick when everything is already there. Needs root (or sudo) to install.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v snmpget >/dev/null 2>&1 || need+=(snmp)
# Debian's net-snmp ships without the IETF base MIBs (SNMPv2-SMI/TC/CONF) that the FM tests
# load RADIVINA-FM-MIB against; erlang-snmp carries them as text. smilint checks the MIB.
ls /usr/lib/erlang/lib/snmp-*/mibs/SNMPv2-SMI.mib >/dev/null 2>&1 || need+=(erlang-snmp)
command -v smilint >/dev/null 2>&1 || need+=(smitools)
command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pg_ctlcluster >/dev/null 2>&1 || command -v pg_isready >/dev/null 2>&1 \
  || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-system: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null || true
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The tests start their own Mosquitto on free ports; a system broker is not needed.

# PostgreSQL: start the local cluster if it is installed but down.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    echo "ensure-system: starting PostgreSQL $version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi

# The tests need a role that may create scratch databases over TCP. With trust auth (as on CI)
# postgres@127.0.0.1 works; otherwise create a password role and tell the tests about it.
mkdir -p var
if [ -z "${TTCS_TEST_PG:-}" ] && ! psql "postgresql://postgres@127.0.0.1:5432/postgres" \
      -qtAc 'select 1' >/dev/null 2>&1; then
  if [ ! -s var/test-pg-url ]; then
    echo "ensure-system: creating PostgreSQL role ttcs_test for the test suite"
    $SUDO -u postgres psql -qtAc "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ttcs_test') THEN
          CREATE ROLE ttcs_test LOGIN SUPERUSER PASSWORD 'ttcs_test';
        END IF; END \$\$;" \
      || su postgres -c "psql -qtAc \"CREATE ROLE ttcs_test LOGIN SUPERUSER PASSWORD 'ttcs_test'\"" \
      || true
    echo "postgresql://ttcs_test:ttcs_test@127.0.0.1:5432/postgres" > var/test-pg-url
  fi
fi
