#!/bin/sh
# model-candidate.sh - drill candidates for the reference platform's promotion corridor
# (rp-control, docs/platform-contract.md §9), bound as actions in envs/local.yaml for
# DR-01 (rollback) and DR-06 (audit). An env profile action cannot take arguments from a
# scenario, and a registry version can be registered only once, so this script mints a fresh
# version per call and remembers what it replaced.
#
#   model-candidate.sh CONTROL_URL promote PREFIX [--extra-latency MS] [--no-lineage] [--allow-refusal]
#                      [--actor NAME]
#       Registers PREFIX-<utc>-<pid> with the active model's weights (same scores: the drill
#       changes only the version and, with --extra-latency, the serving cost) and, unless
#       --no-lineage, the active model's training run (so the lineage gate can pass), then
#       promotes it with full evidence (evaluation report, matching artifact checksum,
#       approval, lineage_complete: true - a claim the corridor must verify, not trust).
#       Exit 0 when promoted; with --allow-refusal also when refused fail-closed (409);
#       1 otherwise.
#   model-candidate.sh CONTROL_URL restore PREFIX [--actor NAME]
#       Idempotent undo: when the active version starts with PREFIX, POST /rollback; if it
#       is still active (a rollback that did not take effect), promote again the version
#       this script saw active before its promote. Exit 0 when no PREFIX version is active.
#   --actor names who acts in the promotion ledger (default fpdrill); the drills pass
#   fpdrill-${run.id} so their checks find exactly this run's rows.
set -eu

usage() { echo "usage: $0 CONTROL_URL promote|restore PREFIX [options]" >&2; exit 2; }
[ $# -ge 3 ] || usage
url=$1 cmd=$2 prefix=$3 actor=fpdrill
shift 3
case $prefix in *[!A-Za-z0-9._-]* | '') usage ;; esac
# The version the promote replaced, per control URL and prefix, for restore.
key=$(printf '%s' "$url" | tr -c 'A-Za-z0-9' '_')
lkg_file="${TMPDIR:-/tmp}/fpdrill-candidate-$key-$prefix.lkg"

# call METHOD PATH [BODY]: prints the body, then the status on its own last line.
call() {
  if [ $# -ge 3 ]; then
    curl -sS -m 20 -X "$1" -H 'Content-Type: application/json' --data "$3" \
      -w '\n%{http_code}' "$url$2"
  else
    curl -sS -m 20 -X "$1" -w '\n%{http_code}' "$url$2"
  fi
}
status_of() { printf '%s\n' "$1" | tail -n 1; }
body_of() { printf '%s\n' "$1" | sed '$d'; }

active_version() {
  r=$(call GET /models/active) || return 1
  [ "$(status_of "$r")" = 200 ] || return 1
  body_of "$r" | jq -r '.version'
}

promote_with_evidence() { # VERSION SHA LINEAGE_CLAIM REASON
  body=$(jq -cn --arg v "$1" --arg s "$2" --argjson l "$3" --arg r "$4" \
    --arg a "$actor" '{version:$v, actor:$a, reason:$r, approval:"fpdrill-drill-approval",
      evidence:{evaluation_report:("fpdrill:drill-candidate:" + $v), artifact_sha256:$s,
                lineage_complete:$l}}')
  call POST /promote "$body"
}

case $cmd in
promote)
  latency=0 lineage=1 allow_refusal=0
  while [ $# -gt 0 ]; do
    case $1 in
    --extra-latency) [ $# -ge 2 ] || usage; latency=$2; shift 2 ;;
    --no-lineage) lineage=0; shift ;;
    --allow-refusal) allow_refusal=1; shift ;;
    --actor) [ $# -ge 2 ] || usage; actor=$2; shift 2 ;;
    *) usage ;;
    esac
  done
  r=$(call GET /models/active)
  [ "$(status_of "$r")" = 200 ] || { echo "no active model: $r" >&2; exit 1; }
  active=$(body_of "$r")
  from=$(printf '%s' "$active" | jq -r '.version')
  printf '%s\n' "$from" >"$lkg_file"
  version="$prefix-$(date -u +%Y%m%dT%H%M%SZ)-$$"
  weights=$(printf '%s' "$active" | jq -c '.weights')
  sha=$(printf '%s %s' "$version" "$weights" | sha256sum | cut -c1-64)
  if [ "$lineage" = 1 ]; then run=$(printf '%s' "$active" | jq -c '.training_run_id'); else run=null; fi
  reg=$(jq -cn --arg v "$version" --argjson w "$weights" --arg s "$sha" --argjson t "$run" \
    --argjson l "$latency" '{version:$v, weights:$w, artifact_sha256:$s, training_run_id:$t,
                             extra_latency_ms:$l}')
  r=$(call POST /models "$reg")
  [ "$(status_of "$r")" = 201 ] || { echo "register $version failed: $r" >&2; exit 1; }
  r=$(promote_with_evidence "$version" "$sha" true "fpdrill drill candidate $prefix")
  st=$(status_of "$r")
  echo "promote $version (replacing $from, extra_latency_ms=$latency, lineage=$lineage): $st $(body_of "$r")"
  if [ "$st" = 200 ]; then exit 0; fi
  if [ "$st" = 409 ] && [ "$allow_refusal" = 1 ]; then exit 0; fi
  exit 1
  ;;
restore)
  while [ $# -gt 0 ]; do
    case $1 in
    --actor) [ $# -ge 2 ] || usage; actor=$2; shift 2 ;;
    *) usage ;;
    esac
  done
  v=$(active_version) || { echo "cannot read the active model" >&2; exit 1; }
  case $v in "$prefix"-*) ;; *) echo "active $v: nothing to restore"; exit 0 ;; esac
  r=$(call POST /rollback "$(jq -cn --arg a "$actor" '{actor:$a, reason:"fpdrill restore after drill candidate"}')")
  echo "rollback from $v: $(status_of "$r")"
  v=$(active_version) || exit 1
  case $v in "$prefix"-*) ;; *) echo "active $v"; exit 0 ;; esac
  # The rollback did not take effect: promote the saved last known good version again.
  [ -s "$lkg_file" ] || { echo "still on $v and no saved version to restore" >&2; exit 1; }
  lkg=$(cat "$lkg_file")
  r=$(call GET /models)
  sha=$(body_of "$r" | jq -r --arg v "$lkg" '.models[] | select(.version == $v) | .artifact_sha256')
  r=$(promote_with_evidence "$lkg" "$sha" true "fpdrill restore: rollback left $v active")
  echo "re-promote $lkg: $(status_of "$r")"
  v=$(active_version) || exit 1
  case $v in "$prefix"-*) echo "still on $v" >&2; exit 1 ;; esac
  echo "active $v"
  ;;
*) usage ;;
esac
