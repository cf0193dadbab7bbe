#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup and gofmt_check are called indirectly (trap, step)
# test.sh: the project's test command (the README's, and what .ci/run runs).
#
#   scripts/test.sh                          everything
#   scripts/test.sh ./policy/... -run JWT -v packages first, then go test flags
#
# Installs what is missing (scripts/install-deps.sh), starts throwaway
# PostgreSQL, Redis and FerretDB on free ports (scripts/servers.sh), then runs
# gofmt, go vet, staticcheck and go test against them. The servers are always
# stopped and their data removed on exit. The exit code is go test's; if the
# tests pass but a check failed, it is 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Leading non-flag arguments are packages; the rest goes to go test.
pkgs=()
while (($#)) && [[ $1 != -* ]]; do
	pkgs+=("$1")
	shift
done
((${#pkgs[@]})) || pkgs=(./...)

scripts/install-deps.sh

srvdir=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-test.XXXXXX")
cleanup() {
	scripts/servers.sh stop "$srvdir" >/dev/null 2>&1 || true
	rm -rf "$srvdir"
}
trap cleanup EXIT
# Turn signals into an exit so the EXIT trap stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/servers.sh start "$srvdir"
# shellcheck source=/dev/null
. "$srvdir/env"

failed=()
step() { # NAME CMD...: run a check, remember a failure, go on
	local name=$1 start=$SECONDS
	shift
	tg_log "$name"
	if "$@"; then
		tg_log "$name: ok ($((SECONDS - start))s)"
	else
		tg_log "$name: FAILED"
		failed+=("$name")
	fi
}

gofmt_check() {
	local out
	out=$(find . \( -path ./.git -o -path ./vendor -o -name testdata -o -name node_modules \) -prune \
		-o -name '*.go' -print0 | xargs -0 -r gofmt -l)
	[[ -z $out ]] && return 0
	printf 'not gofmt-ed (run gofmt -w):\n%s\n' "$out" >&2
	return 1
}

step gofmt gofmt_check
step "go vet" go vet "${pkgs[@]}"
step staticcheck staticcheck "${pkgs[@]}"

tg_log "go test -count=1 $* ${pkgs[*]}"
rc=0
go test -count=1 "$@" "${pkgs[@]}" || rc=$?

if ((${#failed[@]})); then
	tg_log "checks FAILED: ${failed[*]}"
	((rc != 0)) || rc=1
fi
exit "$rc"
