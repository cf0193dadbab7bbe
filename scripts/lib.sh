# shellcheck shell=bash disable=SC2034 # variables are used by the sourcing scripts
# Shared settings for scripts/*.sh. Sourced, never run.
#
# Everything built or installed outside apt lives under one cache dir so that
# re-runs (and later CI runs on the same machine) reuse it, and a fresh machine
# rebuilds it from the Go module proxy.

TG_FERRETDB_VERSION=v1.24.2  # MongoDB-wire test server (SQLite backend)
TG_STATICCHECK_VERSION=v0.8.2 # first line to support Go 1.26 (its go.mod says go 1.26.0)

TG_TOOLS_DIR=${TENANTGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tenantgate}
TG_BIN_DIR=$TG_TOOLS_DIR/bin

# Go may not be on PATH in a bare CI shell; our tools must win over others.
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) [[ -d /usr/local/go/bin ]] && PATH=$PATH:/usr/local/go/bin ;; esac
PATH=$TG_BIN_DIR:$PATH
export PATH

tg_log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
tg_die() { tg_log "ERROR: $*"; exit 1; }

# tg_pg_bindir prints the directory holding initdb/pg_ctl/postgres. Debian
# keeps them out of PATH under /usr/lib/postgresql/N/bin; prefer 15 (what the
# project targets), else the newest installed. TENANTGATE_PG_BINDIR overrides.
tg_pg_bindir() {
	if [[ -n ${TENANTGATE_PG_BINDIR:-} ]]; then
		printf '%s\n' "$TENANTGATE_PG_BINDIR"
		return 0
	fi
	if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
		printf '%s\n' /usr/lib/postgresql/15/bin
		return 0
	fi
	local d
	d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1)
	[[ -n $d ]] || return 1
	printf '%s\n' "${d%/pg_ctl}"
}

# tg_free_port prints a random port in 10000-32767 (below Linux's ephemeral
# range, so outgoing connections do not take it) where nothing listens now.
tg_free_port() {
	local port i
	for ((i = 0; i < 100; i++)); do
		port=$((10000 + RANDOM % 22768))
		# A refused connect means nothing listens there (on any local address
		# that accepts 127.0.0.1, including wildcard and dual-stack binds).
		if ! (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	tg_die "no free port found"
}

# tg_dev_secret exports TENANTGATE_JWT_SECRET as 32 random bytes in hex, the
# HS256 secret a throwaway tenantgate (demo, benchmarks) signs its tokens with.
tg_dev_secret() {
	TENANTGATE_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	export TENANTGATE_JWT_SECRET
}

# tg_cpu_ticks PID: the user and system CPU time PID has used so far, in
# clock ticks (getconf CLK_TCK per second).
tg_cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat") || return 1
	stat=${stat##*) } # the command name may hold spaces; fields restart after it
	awk '{ print $12 + $13 }' <<<"$stat"
}

# TG_AWK_MEDIAN is an awk function for the bench scripts' summaries:
# median(list) of a list of numbers each preceded by a space (" 3 1 2"),
# 0 for an empty list. Prepend it to an awk program.
# shellcheck disable=SC2016
TG_AWK_MEDIAN='
	function median(list,   v, m, i, j, x) {
		m = split(substr(list, 2), v, " ")
		if (m == 0) return 0
		for (i = 2; i <= m; i++) {
			x = v[i] + 0
			for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]
			v[j + 1] = x
		}
		return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
	}'
