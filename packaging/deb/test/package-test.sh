#!/usr/bin/env bash
# Package checks for proximity-agent and proximity-coordinator, run by
# `make package-test` (as root, with the Debian mirror reachable):
#
#   - two builds of the same version are byte-identical (reproducible);
#   - in a Debian 12 and a Debian 13 root made with debootstrap:
#       lintian --fail-on error,warning (that release's lintian),
#       systemd-analyze verify (no output allowed) and security --offline
#       (the coordinator must score 2.0 or better; the agent, root without
#       file-system namespacing, 8.0: 7.2 with systemd 252, 9.6 unhardened),
#       install, `proximity-coordinator keygen` as the example settings
#       file says, upgrade to a newer build, remove and purge, with files,
#       users, conffiles, the agent's Proxmox token and the cluster key
#       checked after each.
#
# PACKAGE_TEST_KEEP=1 keeps the work directory; PACKAGE_TEST_SUITES limits
# the releases (default "bookworm trixie").
set -euo pipefail
cd "$(dirname "$0")/../../.."

suites=${PACKAGE_TEST_SUITES:-bookworm trixie}
work=$(mktemp -d /var/tmp/proximity-package-test.XXXXXX)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
roots=()

cleanup() {
	for r in "${roots[@]}"; do
		umount "$r/proc" 2>/dev/null || true
	done
	if [ "${PACKAGE_TEST_KEEP:-}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

v1=0.4.0
v2=0.4.1

step "build $v1 twice and $v2"
make -s deb PKG_VERSION=$v1 PKG_OUT="$work/v1" >/dev/null
rm -rf dist # nothing staged from an earlier build may leak into the second one
make -s deb PKG_VERSION=$v1 PKG_OUT="$work/v1-again" >/dev/null
make -s deb PKG_VERSION=$v2 PKG_OUT="$work/v2" >/dev/null
for p in agent coordinator; do
	a=$(sha256sum <"$work/v1/proximity-${p}_${v1}-1_amd64.deb")
	b=$(sha256sum <"$work/v1-again/proximity-${p}_${v1}-1_amd64.deb")
	[ "$a" = "$b" ] || fail "proximity-$p: two builds of $v1 differ"
	echo "proximity-$p $v1: reproducible, $(stat -c %s "$work/v1/proximity-${p}_${v1}-1_amd64.deb") bytes, sha256 ${a%% *}"
done

# A stand-in for Proxmox's pve-container (the agent depends on it) with a
# pveum that records its calls and makes a token, as on a node.
step "stub pve-container package"
stub="$work/stub"
mkdir -p "$stub/DEBIAN" "$stub/usr/sbin"
cat >"$stub/DEBIAN/control" <<EOF
Package: pve-container
Version: 6.0.0-stub
Architecture: all
Maintainer: Proximity tests <dev@proximity-ve.org>
Description: stand-in for tests
 Provides pct and pveum stubs.
EOF
cat >"$stub/usr/sbin/pct" <<'EOF'
#!/bin/sh
echo "pct stub" >&2
exit 255
EOF
cat >"$stub/usr/sbin/pveum" <<'EOF'
#!/bin/sh
echo "pveum $*" >>/var/log/pveum.calls
case "$*" in
"user token add"*) echo '{"full-tokenid":"proximity-agent@pve!agent","info":{"privsep":0},"value":"5ec2e7-0000-4000-8000-000000000001"}' ;;
esac
exit 0
EOF
chmod 755 "$stub/usr/sbin/pct" "$stub/usr/sbin/pveum"
dpkg-deb --root-owner-group --build "$stub" "$work/pve-container-stub.deb" >/dev/null

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
exists() { in_root test -e "$1" || fail "$suite: $2: $1 is missing"; }
absent() { if in_root test -e "$1"; then fail "$suite: $2: $1 is still there"; fi; }
installed_version() { in_root dpkg-query -W -f='${Version} ${db:Status-Abbrev}' "$1" 2>/dev/null || true; }

check_installed() { # version, step
	local ver=$1 what=$2
	for p in agent coordinator; do
		case "$(installed_version proximity-$p)" in
		"$ver-1 ii"*) ;;
		*) fail "$suite: $what: proximity-$p is '$(installed_version proximity-$p)', want $ver-1 installed" ;;
		esac
	done
	for f in /usr/bin/proximity-agent /usr/bin/proximity-coordinator /usr/bin/proximityctl \
		/usr/lib/systemd/system/proximity-agent.service /usr/lib/systemd/system/proximity-coordinator.service \
		/usr/share/man/man8/proximity-agent.8.gz /usr/share/man/man8/proximity-coordinator.8.gz /usr/share/man/man1/proximityctl.1.gz \
		/usr/share/doc/proximity-agent/copyright /usr/share/doc/proximity-agent/changelog.Debian.gz \
		/usr/share/doc/proximity-coordinator/examples/coordinator.yaml /etc/proximity/agent.env /etc/proximity/coordinator.env; do
		exists "$f" "$what"
	done
	[ "$(in_root proximity-agent --version)" = "proximity-agent version $ver" ] || fail "$suite: $what: agent --version: $(in_root proximity-agent --version)"
	[ "$(in_root proximity-coordinator --version)" = "proximity-coordinator version $ver" ] || fail "$suite: $what: coordinator --version"
	in_root dpkg-query -W -f='${Conffiles}\n' proximity-agent | grep -q '/etc/proximity/agent.env' || fail "$suite: $what: agent.env is not a conffile"
	in_root dpkg-query -W -f='${Conffiles}\n' proximity-coordinator | grep -q '/etc/proximity/coordinator.env' || fail "$suite: $what: coordinator.env is not a conffile"
	local pw
	pw=$(in_root getent passwd proximity) || fail "$suite: $what: no user proximity"
	local uid=${pw#*:*:}
	uid=${uid%%:*}
	[ "$uid" -lt 1000 ] || fail "$suite: $what: proximity is not a system user ($pw)"
	case "$pw" in *nologin | */false) ;; *) fail "$suite: $what: proximity has a login shell ($pw)" ;; esac
	[ "$(in_root stat -c %a /etc/proximity/pve-token)" = 600 ] || fail "$suite: $what: pve-token is not 0600"
	grep -qx 'proximity-agent@pve!agent=5ec2e7-0000-4000-8000-000000000001' "$root/etc/proximity/pve-token" || fail "$suite: $what: pve-token content"
	exists /etc/systemd/system/multi-user.target.wants/proximity-agent.service "$what (enabled)"
	exists /etc/systemd/system/multi-user.target.wants/proximity-coordinator.service "$what (enabled)"
}

for suite in $suites; do
	root="$work/$suite"
	step "$suite: debootstrap"
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap-$suite.log" 2>&1 ||
		{ tail -20 "$work/debootstrap-$suite.log"; fail "debootstrap $suite"; }
	roots+=("$root")
	mount -t proc proc "$root/proc"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	in_root apt-get update -qq
	in_root apt-get install -y -qq --no-install-recommends systemd lintian man-db >"$work/apt-$suite.log" 2>&1 ||
		{ tail -20 "$work/apt-$suite.log"; fail "apt-get install in $suite"; }
	mkdir -p "$root/tmp/debs"
	cp "$work"/v1/*.deb "$root/tmp/debs/"
	cp "$work"/v2/*.deb "$work/pve-container-stub.deb" "$root/tmp/debs/"
	echo "$suite: lintian $(in_root dpkg-query -W -f='${Version}' lintian), systemd $(in_root dpkg-query -W -f='${Version}' systemd)"

	step "$suite: lintian"
	in_root lintian --fail-on error,warning --display-info --pedantic --tag-display-limit 0 \
		/tmp/debs/proximity-agent_${v1}-1_amd64.deb /tmp/debs/proximity-coordinator_${v1}-1_amd64.deb ||
		fail "$suite: lintian"
	echo "lintian: no errors or warnings"

	step "$suite: install $v1"
	in_root dpkg -i /tmp/debs/pve-container-stub.deb >/dev/null
	in_root apt-get install -y -qq /tmp/debs/proximity-agent_${v1}-1_amd64.deb /tmp/debs/proximity-coordinator_${v1}-1_amd64.deb \
		>"$work/install-$suite.log" 2>&1 || { tail -20 "$work/install-$suite.log"; fail "$suite: install"; }
	check_installed $v1 "install"
	grep -q 'user token add proximity-agent@pve agent --privsep 0' "$root/var/log/pveum.calls" || fail "$suite: pveum was not asked for a token"
	echo "installed: files, conffiles, user proximity, pve-token 0600, units enabled"

	step "$suite: systemd-analyze"
	for u in proximity-agent proximity-coordinator; do
		out=$(in_root systemd-analyze verify --man=no /usr/lib/systemd/system/$u.service 2>&1) || true
		[ -z "$out" ] || fail "$suite: systemd-analyze verify $u: $out"
		score=$(in_root systemd-analyze security --offline=true /usr/lib/systemd/system/$u.service 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: //p')
		echo "$u.service: verify clean; security $score"
	done
	in_root systemd-analyze security --offline=true --threshold=20 /usr/lib/systemd/system/proximity-coordinator.service >/dev/null ||
		fail "$suite: the coordinator unit scores worse than 2.0"
	in_root systemd-analyze security --offline=true --threshold=80 /usr/lib/systemd/system/proximity-agent.service >/dev/null ||
		fail "$suite: the agent unit scores worse than 8.0 (has its hardening gone?)"

	step "$suite: cluster key"
	# What the example settings file and proximity-coordinator(8) tell the
	# operator to run on the first server.
	grep -qx 'cluster-key-file: /etc/proximity/cluster.key' "$root/usr/share/doc/proximity-coordinator/examples/coordinator.yaml" ||
		fail "$suite: the example coordinator.yaml does not set cluster-key-file"
	in_root proximity-coordinator keygen --out /etc/proximity/cluster.key >"$work/keygen-$suite.log" 2>&1 ||
		{ cat "$work/keygen-$suite.log"; fail "$suite: keygen"; }
	grep -q '^wrote cluster key [0-9a-f]* to /etc/proximity/cluster.key$' "$work/keygen-$suite.log" || fail "$suite: keygen printed: $(cat "$work/keygen-$suite.log")"
	in_root chown proximity:proximity /etc/proximity/cluster.key
	[ "$(in_root stat -c '%a %U:%G' /etc/proximity/cluster.key)" = "600 proximity:proximity" ] ||
		fail "$suite: cluster.key is $(in_root stat -c '%a %U:%G' /etc/proximity/cluster.key), want 600 proximity:proximity"
	key_before=$(cat "$root/etc/proximity/cluster.key")
	if in_root proximity-coordinator keygen --out /etc/proximity/cluster.key >/dev/null 2>&1; then
		fail "$suite: keygen overwrote an existing key file"
	fi
	[ "$(cat "$root/etc/proximity/cluster.key")" = "$key_before" ] || fail "$suite: a refused keygen changed the key file"
	echo "keygen: a new key, 0600, not overwritten"

	step "$suite: upgrade to $v2"
	echo "# local edit" >>"$root/etc/proximity/agent.env"
	printf 'node: pve1\ncoordinator: 10.0.0.5:7073\ndata-dir: /var/lib/proximity-agent\n' >"$root/etc/proximity/agent.yaml"
	token_before=$(cat "$root/etc/proximity/pve-token")
	calls_before=$(wc -l <"$root/var/log/pveum.calls")
	in_root apt-get install -y -qq /tmp/debs/proximity-agent_${v2}-1_amd64.deb /tmp/debs/proximity-coordinator_${v2}-1_amd64.deb \
		>"$work/upgrade-$suite.log" 2>&1 || { tail -20 "$work/upgrade-$suite.log"; fail "$suite: upgrade"; }
	check_installed $v2 "upgrade"
	grep -q '^# local edit$' "$root/etc/proximity/agent.env" || fail "$suite: upgrade lost the local edit of agent.env"
	[ "$(cat "$root/etc/proximity/pve-token")" = "$token_before" ] || fail "$suite: upgrade replaced the Proxmox token"
	[ "$(wc -l <"$root/var/log/pveum.calls")" = "$calls_before" ] || fail "$suite: upgrade called pveum again"
	[ "$(cat "$root/etc/proximity/cluster.key")" = "$key_before" ] || fail "$suite: upgrade changed the cluster key"
	echo "upgraded: local conffile edit kept, token and cluster key kept"

	step "$suite: remove"
	mkdir -p "$root/var/lib/proximity-agent" "$root/var/lib/proximity-coordinator"
	touch "$root/var/lib/proximity-agent/node.crt" "$root/var/lib/proximity-coordinator/node-id"
	in_root apt-get remove -y -qq proximity-agent proximity-coordinator >"$work/remove-$suite.log" 2>&1 ||
		{ tail -20 "$work/remove-$suite.log"; fail "$suite: remove"; }
	for p in agent coordinator; do
		case "$(installed_version proximity-$p)" in "$v2-1 rc"*) ;; *) fail "$suite: remove: proximity-$p is '$(installed_version proximity-$p)'" ;; esac
	done
	absent /usr/bin/proximity-agent remove
	absent /usr/bin/proximityctl remove
	absent /usr/lib/systemd/system/proximity-coordinator.service remove
	exists /etc/proximity/agent.env "remove (conffiles stay)"
	exists /var/lib/proximity-agent/node.crt "remove (state stays until purge)"
	exists /etc/proximity/cluster.key "remove (the cluster key stays until purge)"
	echo "removed: binaries and units gone, conffiles and state kept"

	step "$suite: purge"
	in_root dpkg --purge proximity-agent proximity-coordinator >/dev/null
	for p in agent coordinator; do
		[ -z "$(installed_version proximity-$p)" ] || fail "$suite: purge: proximity-$p is '$(installed_version proximity-$p)'"
	done
	for f in /etc/proximity /var/lib/proximity-agent /var/lib/proximity-coordinator \
		/etc/systemd/system/multi-user.target.wants/proximity-agent.service \
		/etc/systemd/system/multi-user.target.wants/proximity-coordinator.service; do
		absent "$f" purge
	done
	echo "purged: conffiles, configuration, token, cluster key, state and unit links gone (the system user stays, as Debian policy asks)"
	umount "$root/proc"
done

step "package checks passed"
