#!/bin/sh
# Builds (once per machine) and prints the path of a Debian root the end-to-end tests run
# targets in: `sid` holds CPython 3.14 and 3.15 (with uvloop), which need sid's libc.
#
#   tools/test-root.sh sid        prints the root's path, building it first if needed
#
# Roots live in a cache outside the checkout, $AIOCOPD_TEST_CACHE (default
# /var/cache/aiocopd-test), and are reused while their stamp (the packages they were built
# with) matches. Callers running at once wait for one build (flock). Needs root, debootstrap
# and the machine's Debian mirror.
set -eu

name=${1:?usage: tools/test-root.sh sid}
cache=${AIOCOPD_TEST_CACHE:-/var/cache/aiocopd-test}
case "$name" in
sid)	suite=sid
	packages="python3.14 python3.15 python3-uvloop" ;;
*)	echo "test-root.sh: unknown root '$name' (known: sid)" >&2; exit 2 ;;
esac
root="$cache/$name"
stamp="$root/.aiocopd-test-root"
want="$suite: $packages"

mkdir -p "$cache"
exec 9>"$cache/.$name.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "$root"
	exit 0
fi
echo "test-root.sh: building the $name root in $root (once per machine, about a minute)" >&2
rm -rf "$root.new"
debootstrap --variant=minbase "$suite" "$root.new" >"$cache/$name.log" 2>&1 || {
	echo "test-root.sh: debootstrap failed, see $cache/$name.log" >&2
	exit 1
}
cp /etc/resolv.conf "$root.new/etc/resolv.conf"
# shellcheck disable=SC2086
chroot "$root.new" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends $packages >>"$cache/$name.log" 2>&1 || {
	echo "test-root.sh: installing $packages failed, see $cache/$name.log" >&2
	exit 1
}
chroot "$root.new" apt-get clean
echo "$want" >"$root.new/.aiocopd-test-root"
rm -rf "$root"
mv "$root.new" "$root"
echo "$root"
