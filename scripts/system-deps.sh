#!/usr/bin/env bash
# Installs the system packages the build needs, when missing (Debian/Ubuntu):
#   libclang-dev       bindgen in librocksdb-sys
#   protobuf-compiler  protoc, for later gRPC code generation
# and, for the tests (--with-nextest), cargo-nextest and the PostgreSQL clients they drive
# against perdure's SQL port:
#   postgresql-client        psql
#   libpostgresql-jdbc-java  the JDBC driver (with default-jre-headless when there is no java)
#   openssl                  makes the certificates of the https:// deployment tests
#   chromium chromium-driver headless Chromium over WebDriver, for the web console test
set -euo pipefail

missing=()
for p in libclang-dev protobuf-compiler; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${1:-}" = "--with-nextest" ]; then
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  [ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
  command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
fi
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-nextest" ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "system-deps: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >&2
fi
