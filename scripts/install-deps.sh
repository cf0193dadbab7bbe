#!/usr/bin/env bash
# install-deps.sh: make sure everything scripts/test.sh needs is on this machine.
#
#   PostgreSQL + Redis   from Debian apt, only when their binaries are missing
#   FerretDB             built from the Go module proxy into $TG_BIN_DIR (cached)
#   staticcheck          go install'ed into $TG_BIN_DIR (cached)
#   mongosh              npm install -g, only when missing and npm exists
#
# Idempotent: a warm run only checks versions and takes well under a second.
# Safe to run concurrently (one flock around the whole thing).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$TG_BIN_DIR"
# Two parallel runs (say two worktrees) must not build into the same files or
# fight over dpkg's lock.
exec 9>"$TG_TOOLS_DIR/.install.lock"
flock 9

# --- apt packages ---------------------------------------------------------

apt_pkgs=()
if pgbin=$(tg_pg_bindir) && [[ -x $pgbin/initdb && -x $pgbin/pg_ctl && -x $pgbin/pg_isready ]]; then
	tg_log "postgresql: present ($pgbin)"
else
	apt_pkgs+=(postgresql)
fi
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	tg_log "redis: present ($(redis-server --version | awk '{print $3}'))"
else
	apt_pkgs+=(redis-server redis-tools)
fi
# The demo waits on the admin endpoint with curl.
if ! command -v curl >/dev/null; then
	apt_pkgs+=(curl)
fi
# pg_query_go (the SQL parser the proxy uses) is cgo.
if ! command -v gcc >/dev/null; then
	apt_pkgs+=(gcc libc6-dev)
fi

if ((${#apt_pkgs[@]})); then
	[[ $(id -u) == 0 ]] || tg_die "need root to apt-get install ${apt_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Package postinst scripts would try to start a system-wide cluster/server
	# on the default ports; we start our own per run, so forbid that (the usual
	# container policy-rc.d), but only if the machine has no policy of its own.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	tg_log "apt-get update"
	apt-get update -qq -o Acquire::Retries=3
	# Prefer the major version the project targets; fall back to the
	# distribution's default where postgresql-15 is not packaged.
	if [[ " ${apt_pkgs[*]} " == *" postgresql "* ]] && apt-cache show postgresql-15 >/dev/null 2>&1; then
		apt_pkgs=("${apt_pkgs[@]/#postgresql/postgresql-15}")
	fi
	tg_log "apt-get install ${apt_pkgs[*]}"
	apt-get install -y -qq --no-install-recommends --no-upgrade -o Dpkg::Use-Pty=0 "${apt_pkgs[@]}" >/dev/null
	pgbin=$(tg_pg_bindir) || tg_die "postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl"
	tg_log "postgresql: $pgbin; redis: $(command -v redis-server)"
fi

# --- Go-built tools -------------------------------------------------------

# Our own builds ignore the caller's GOFLAGS/workspace (e.g. -mod=vendor).
go_clean_env=(env GOWORK=off GOFLAGS=-buildvcs=false)

ferretdb_ok() {
	[[ -x $TG_BIN_DIR/ferretdb && -x $TG_BIN_DIR/tenantgate-mongo-ping ]] &&
		[[ $("$TG_BIN_DIR/ferretdb" --version 2>/dev/null | head -n 1) == "version: $TG_FERRETDB_VERSION" ]]
}

# FerretDB's module zip lacks the generated build/version/version.txt, so a
# plain `go install` builds a binary that panics at start. Build from a
# writable copy of the module source with that file written in. SQLite
# (modernc.org/sqlite, pure Go) is in the default build: no tags, no cgo.
# Without the ferretdb_debug tag this is a release-style (non-debug) build.
build_ferretdb() {
	local mod src start
	start=$SECONDS
	tg_log "ferretdb: building $TG_FERRETDB_VERSION from the Go module proxy (one-off, ~2 min)"
	mod=$(cd "$TG_TOOLS_DIR" && "${go_clean_env[@]}" go mod download -json "github.com/FerretDB/FerretDB@$TG_FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -d $mod ]] || tg_die "go mod download of FerretDB gave no source dir"
	src=$TG_TOOLS_DIR/ferretdb-src
	rm -rf "$src"
	cp -R "$mod" "$src"
	chmod -R u+w "$src" # the module cache is read-only
	printf '%s\n' "$TG_FERRETDB_VERSION" >"$src/build/version/version.txt"

	# A readiness probe that speaks the real protocol through the official
	# driver (FerretDB's own `ping` command needs auth). Built inside the
	# FerretDB module so it reuses the driver version already downloaded.
	mkdir -p "$src/cmd/tenantgate-mongo-ping"
	cat >"$src/cmd/tenantgate-mongo-ping/main.go" <<'EOF'
// Command tenantgate-mongo-ping exits 0 once the MongoDB-wire server at
// os.Args[1] answers ping and listDatabases.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tenantgate-mongo-ping mongodb://host:port/")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	opts := options.Client().ApplyURI(os.Args[1]).SetServerSelectionTimeout(2 * time.Second)
	client, err := mongo.Connect(ctx, opts)
	if err == nil {
		// No Disconnect: it sends endSessions, which FerretDB logs as an
		// unknown command; exiting closes the connection anyway.
		err = client.Ping(ctx, nil)
	}
	if err == nil {
		_, err = client.ListDatabaseNames(ctx, bson.D{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
EOF
	if ! (
		cd "$src"
		export CGO_ENABLED=0
		"${go_clean_env[@]}" go build -trimpath -o "$TG_BIN_DIR/.ferretdb.tmp" ./cmd/ferretdb
		"${go_clean_env[@]}" go build -trimpath -o "$TG_BIN_DIR/.tenantgate-mongo-ping.tmp" ./cmd/tenantgate-mongo-ping
	) >"$TG_TOOLS_DIR/ferretdb-build.log" 2>&1; then
		tail -n 40 "$TG_TOOLS_DIR/ferretdb-build.log" >&2
		tg_die "ferretdb build failed (log: $TG_TOOLS_DIR/ferretdb-build.log)"
	fi
	# Rename into place only after both built, so a half build is never cached.
	mv -f "$TG_BIN_DIR/.tenantgate-mongo-ping.tmp" "$TG_BIN_DIR/tenantgate-mongo-ping"
	mv -f "$TG_BIN_DIR/.ferretdb.tmp" "$TG_BIN_DIR/ferretdb"
	rm -rf "$src"
	ferretdb_ok || tg_die "built ferretdb does not report version $TG_FERRETDB_VERSION"
	tg_log "ferretdb: built in $((SECONDS - start))s"
}

if ferretdb_ok; then
	tg_log "ferretdb: present ($TG_FERRETDB_VERSION, $TG_BIN_DIR)"
else
	build_ferretdb
fi

staticcheck_ok() {
	[[ -x $TG_BIN_DIR/staticcheck ]] &&
		[[ $("$TG_BIN_DIR/staticcheck" -version 2>/dev/null) == *"(${TG_STATICCHECK_VERSION#v})"* ]] # prints e.g. "staticcheck 2026.2.2 (0.8.2)"
}
if staticcheck_ok; then
	tg_log "staticcheck: present ($TG_STATICCHECK_VERSION)"
else
	start=$SECONDS
	tg_log "staticcheck: installing $TG_STATICCHECK_VERSION"
	if ! (cd "$TG_TOOLS_DIR" && GOBIN=$TG_BIN_DIR "${go_clean_env[@]}" go install "honnef.co/go/tools/cmd/staticcheck@$TG_STATICCHECK_VERSION") >"$TG_TOOLS_DIR/staticcheck-build.log" 2>&1; then
		tail -n 40 "$TG_TOOLS_DIR/staticcheck-build.log" >&2
		tg_die "staticcheck install failed (log: $TG_TOOLS_DIR/staticcheck-build.log)"
	fi
	staticcheck_ok || tg_die "installed staticcheck does not report version $TG_STATICCHECK_VERSION"
	tg_log "staticcheck: installed in $((SECONDS - start))s"
fi

# --- mongosh (npm) --------------------------------------------------------

# The MongoDB engine's tests drive the proxy with mongosh, a real client.
# npm's global install (needs Node, which the machine has): only when mongosh
# is missing, so a warm run costs nothing. Pinned for repeatable tests.
TG_MONGOSH_VERSION=2.5.10
if command -v mongosh >/dev/null; then
	tg_log "mongosh: present ($(mongosh --version 2>/dev/null | head -n 1))"
elif command -v npm >/dev/null; then
	start=$SECONDS
	tg_log "mongosh: npm install -g mongosh@$TG_MONGOSH_VERSION (one-off)"
	if ! npm install -g --no-audit --no-fund --loglevel=error "mongosh@$TG_MONGOSH_VERSION" >"$TG_TOOLS_DIR/mongosh-install.log" 2>&1; then
		tail -n 40 "$TG_TOOLS_DIR/mongosh-install.log" >&2
		tg_die "mongosh install failed (log: $TG_TOOLS_DIR/mongosh-install.log)"
	fi
	command -v mongosh >/dev/null || tg_die "npm installed mongosh but it is not on PATH ($(npm prefix -g)/bin)"
	tg_log "mongosh: installed $(mongosh --version 2>/dev/null | head -n 1) in $((SECONDS - start))s"
else
	tg_log "mongosh: missing and no npm; the mongosh tests will skip (and fail under CI=true)"
fi
