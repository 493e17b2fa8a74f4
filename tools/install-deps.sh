#!/bin/sh
# Installs the Debian packages named on the command line that are not installed yet.
# Needs root when something is missing; does nothing (and needs nothing) otherwise.
set -eu
# One dpkg-query for all of them; a package dpkg does not know is simply not listed.
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
	awk '$NF == "installed" && $(NF - 1) == "ok" { printf "%s ", $1 }' || true) "
missing=""
for pkg in "$@"; do
	case "$installed" in
	*" $pkg "*) ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "aiocopd: missing build dependencies:$missing" >&2
	echo "aiocopd: run 'sudo make deps' (or install them with apt-get) and try again" >&2
	exit 1
fi
echo "aiocopd: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
