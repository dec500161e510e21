# shellcheck shell=bash
# Shared by cmd/dev and test/run (sourced, not run): the Debian packages the
# project needs, installed only when missing, and where their programs live.

RB_DEB_PACKAGES=(
	build-essential cmake pkg-config clang
	liburing-dev libwolfssl-dev libyaml-dev libjemalloc-dev
	postgresql postgresql-contrib pgbouncer libpq-dev
	python3 python3-psycopg python3-pytest
)

# Installs whichever of RB_DEB_PACKAGES are not installed (apt-get update once, first).
rb_deps_install() {
	local missing=() p
	for p in "${RB_DEB_PACKAGES[@]}"; do
		if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi
	echo "== installing Debian packages: ${missing[*]}"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null; then
			echo "error: not root and no sudo; install these packages: ${missing[*]}" >&2
			return 1
		fi
		sudo=(sudo)
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || return 1
}

# Prints the folder of PostgreSQL's server programs (initdb, pg_ctl, postgres):
# $RB_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin, else the one on PATH.
rb_pg_bindir() {
	if [ -n "${RB_PG_BINDIR:-}" ]; then
		echo "$RB_PG_BINDIR"
		return 0
	fi
	local best="" v d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] || continue
		v=$(basename "$(dirname "$d")")
		if [ -z "$best" ] || [ "$v" -gt "$(basename "$(dirname "$best")")" ] 2>/dev/null; then
			best=$d
		fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null; then
		best=$(dirname "$(command -v initdb)")
	fi
	[ -n "$best" ] || { echo "error: PostgreSQL's initdb not found" >&2; return 1; }
	echo "$best"
}

# Prints a python3 that imports pytest and psycopg. Debian's /usr/bin/python3 is
# the one apt-get gives them to; a python3 earlier on PATH (pyenv, a venv) may
# not have them.
rb_python() {
	local py
	for py in "${RB_PYTHON:-}" /usr/bin/python3 "$(command -v python3 || true)"; do
		if [ -z "$py" ] || [ ! -x "$py" ]; then continue; fi
		if "$py" -c 'import pytest, psycopg' 2>/dev/null; then
			echo "$py"
			return 0
		fi
	done
	echo "error: no python3 with pytest and psycopg (apt-get install python3-pytest python3-psycopg)" >&2
	return 1
}
