#!/usr/bin/env bash
# Idempotent installer for the fpdrill local stack on Debian 12: Debian packages (build deps,
# PostgreSQL 15, Redis 7, kcat, JDK 17, Maven, ...), the Apache Kafka 3.9.1 broker jars from
# Maven Central, and a MinIO server built with `go install` at a pinned version.
# A second run checks what is there and does nothing (no apt-get update, no Maven, no Go).
#
# Environment:
#   FPDRILL_CACHE   download/build cache (default: $HOME/.cache/fpdrill)
#   FPDRILL_QUIET=1 print only actions and errors, not the "already installed" lines
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
# MinIO: the RELEASE.* tags are refused by the Go module proxy (403); this is the pseudo-version
# `go install github.com/minio/minio@latest` resolved to (commit 7aac2a2c5b7c, 2026-02-12).
readonly MINIO_MODULE=github.com/minio/minio
readonly MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
readonly GO_MIN_MINOR=24   # MinIO needs go >= 1.24

readonly PACKAGES=(
  librdkafka-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libyaml-dev libjansson-dev
  libssl-dev libmicrohttpd-dev libcriterion-dev pkg-config cmake build-essential
  postgresql redis-server kcat curl nginx-light wrk valgrind openjdk-17-jre-headless maven
  chromium fonts-dejavu-core jq
)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FPDRILL_CACHE:-$HOME/.cache/fpdrill}
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
MINIO_BIN=$CACHE/bin/minio

say()  { printf 'install: %s\n' "$*"; }
info() { [[ ${FPDRILL_QUIET:-0} == 1 ]] || say "$*"; }
die()  { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian packages
install_packages() {
  local missing=() p st
  for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $st == installed ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    info "Debian packages: all ${#PACKAGES[@]} installed"
    return
  fi
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root: run as root"
  say "Debian packages missing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
}

# ---------------------------------------------------------------- Go (not from Debian: 1.19 is too old)
find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else return 1
  fi
}

check_go() {
  GO=$(find_go) || die "no 'go' on PATH or at /usr/local/go/bin/go. MinIO needs Go >= 1.$GO_MIN_MINOR \
(Debian 12's golang-go is 1.19, too old). Install Go from https://go.dev/dl/ into /usr/local/go and re-run."
  local v minor
  v=$("$GO" env GOVERSION)             # e.g. go1.26.8
  minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
  if ! [[ $minor =~ ^[0-9]+$ ]] || ((minor < GO_MIN_MINOR)); then
    die "$GO is $v; MinIO needs Go >= 1.$GO_MIN_MINOR"
  fi
}

# ---------------------------------------------------------------- Kafka jars (Maven Central)
install_kafka() {
  if [[ -f $KAFKA_LIBS/.complete ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
    info "Kafka $KAFKA_VERSION jars: present in $KAFKA_LIBS"
    return
  fi
  command -v mvn >/dev/null || die "mvn not found (package maven)"
  say "Kafka $KAFKA_VERSION jars: resolving from Maven Central into $KAFKA_LIBS"
  local tmp=$KAFKA_LIBS.tmp.$$ t0=$SECONDS n
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -B -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$CACHE/kafka-maven.log" 2>&1; then
    tail -n 30 "$CACHE/kafka-maven.log" >&2
    die "Maven failed (full log: $CACHE/kafka-maven.log)"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "Maven did not produce kafka_2.13-$KAFKA_VERSION.jar"
  n=$(find "$tmp" -name '*.jar' | wc -l)
  touch "$tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  say "Kafka $KAFKA_VERSION jars: $n jars in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- MinIO (go install, pinned)
minio_version_of() {   # prints the module version embedded in a Go binary
  "$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "'"$MINIO_MODULE"'" {print $3}'
}

install_minio() {
  if [[ -x $MINIO_BIN && $(minio_version_of "$MINIO_BIN") == "$MINIO_VERSION" ]]; then
    info "MinIO $MINIO_VERSION: present at $MINIO_BIN"
    return
  fi
  say "MinIO $MINIO_VERSION: building with go install (several minutes on 2 cores)"
  local tmp=$CACHE/bin/.gobin.$$ t0=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  GOBIN=$tmp GOTOOLCHAIN=local "$GO" install "$MINIO_MODULE@$MINIO_VERSION"
  [[ $(minio_version_of "$tmp/minio") == "$MINIO_VERSION" ]] || die "go install did not produce minio $MINIO_VERSION"
  mv -f "$tmp/minio" "$MINIO_BIN"
  rmdir "$tmp"
  say "MinIO $MINIO_VERSION: built in $((SECONDS - t0)) s"
}

main() {
  [[ $# == 0 ]] || { echo "usage: $0   (no arguments; see docs/operations-local-stack.md)" >&2; exit 2; }
  mkdir -p "$CACHE/bin"
  install_packages
  check_go
  install_kafka
  install_minio
  info "done (cache: $CACHE)"
}

main "$@"

# ---------------------------------------------------------------- Toxiproxy (toxiproxy.toxic injector)
# Owned by the injectors work: the integration tests of toxiproxy.toxic start this binary on a free
# port. The module's main lives in cmd/server, so `go install` names the binary `server`; it is
# installed under a scratch GOBIN and renamed. Skipped when the pinned version is already there.
readonly TOXIPROXY_MODULE=github.com/Shopify/toxiproxy/v2
readonly TOXIPROXY_VERSION=v2.12.0
TOXIPROXY_BIN=$CACHE/bin/toxiproxy-server

install_toxiproxy() {
  local go=${GO:-$(find_go)} tmp t0=$SECONDS
  if [[ -x $TOXIPROXY_BIN ]] && "$go" version -m "$TOXIPROXY_BIN" 2>/dev/null \
    | awk -v m="$TOXIPROXY_MODULE" -v v="$TOXIPROXY_VERSION" '$1 == "mod" && $2 == m && $3 == v {f=1} END {exit !f}'; then
    info "Toxiproxy $TOXIPROXY_VERSION: present at $TOXIPROXY_BIN"
    return
  fi
  say "Toxiproxy $TOXIPROXY_VERSION: building with go install"
  tmp=$CACHE/bin/.gobin-toxiproxy.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  GOBIN=$tmp GOTOOLCHAIN=local "$go" install "$TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION"
  [[ -x $tmp/server ]] || die "go install did not produce the toxiproxy server binary"
  mv -f "$tmp/server" "$TOXIPROXY_BIN"
  rmdir "$tmp"
  say "Toxiproxy $TOXIPROXY_VERSION: built in $((SECONDS - t0)) s"
}

install_toxiproxy
