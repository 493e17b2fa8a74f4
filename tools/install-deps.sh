#!/bin/sh
# Installs the Debian packages named on the command line that are not installed yet.
# Needs root when something is missing; does nothing (and needs nothing) otherwise.
set -eu
missing=""
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
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
