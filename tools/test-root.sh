#!/bin/sh
# Builds (once per machine) and prints the path of a Debian root the end-to-end tests use:
#   sid       CPython 3.14 and 3.15 (with uvloop), which need sid's libc; targets run in it
#   systemd   Debian bookworm (the host's release, so the host's aiocopd runs in it) with
#             systemd as its init, booted with systemd-nspawn to test the service's unit
#
#   tools/test-root.sh NAME       prints the root's path, building it first if needed
#
# Roots live in a cache outside the checkout, $AIOCOPD_TEST_CACHE (default
# /var/cache/aiocopd-test), and are reused while their stamp (what they were built with)
# matches. Callers running at once wait for one build (flock). Needs root, debootstrap and
# the machine's Debian mirror. Tests never boot or change a cached root itself: they run a
# copy-on-write overlay of it (tests/e2e/nspawn.py).
set -eu

name=${1:?usage: tools/test-root.sh sid|systemd}
cache=${AIOCOPD_TEST_CACHE:-/var/cache/aiocopd-test}
case "$name" in
sid)	suite=sid
	packages="python3.14 python3.15 python3-uvloop" ;;
# aiocopd's own libraries are named so that `make install DESTDIR=root` gives a binary that
# runs there, and man-db so that `systemd-analyze verify` finds the unit's man page; the rest
# is what booting systemd and driving it takes.
systemd) suite=bookworm
	packages="systemd systemd-sysv dbus python3 procps man-db libbpf1 libelf1 zlib1g
		  libjson-c5 libsystemd0 libinih1 libmicrohttpd12" ;;
*)	echo "test-root.sh: unknown root '$name' (known: sid, systemd)" >&2; exit 2 ;;
esac
root="$cache/$name"
stamp="$root/.aiocopd-test-root"
# (the list's line breaks and indents collapsed to single spaces)
# shellcheck disable=SC2086,SC2116
want="$suite: $(echo $packages)"

# A booted container's first start does what a fresh install's first boot would (a machine
# id, presets); settle those here so every boot of an overlay starts from the same state, and
# quiet what a container without a network or a terminal has no use for, so that the system
# reaches "running" rather than "degraded".
configure_systemd_root() {
	r=$1
	echo aiocopd-test >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n' >"$r/etc/hosts"
	: >"$r/etc/machine-id"
	for unit in getty@tty1.service console-getty.service systemd-networkd-wait-online.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
		systemd-timesyncd.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$unit"
	done
}

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
if [ "$name" = systemd ]; then
	configure_systemd_root "$root.new"
fi
echo "$want" >"$root.new/.aiocopd-test-root"
rm -rf "$root"
mv "$root.new" "$root"
echo "$root"
