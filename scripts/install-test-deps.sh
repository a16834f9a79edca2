#!/usr/bin/env bash
# install-test-deps.sh - install what petrel's root-only tests need (the
# strongSwan interop harness in test/interop): strongSwan 5.9.x from Debian
# with the kernel-libipsec plugin, swanctl, pki, iperf3, ping, tshark, nftables
# and iproute2.
#
# Idempotent and non-interactive: it runs `apt-get update` once, and only when
# a package is missing; it answers the wireshark-common debconf question
# ("should non-superusers capture packets?") with "no". Exits non-zero with a
# one-line reason when something cannot be installed.
set -euo pipefail

PKGS=(
  strongswan-charon strongswan-swanctl libcharon-extra-plugins
  libstrongswan-standard-plugins strongswan-pki
  iperf3 iputils-ping tshark nftables iproute2
)

die() { echo "install-test-deps: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs Debian packages)"
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null \
  || die "needs a Debian-based system with apt-get and dpkg-query"

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # iperf3 asks whether to start a daemon; wireshark-common whether
  # non-root users may capture. Answer both "no".
  if command -v debconf-set-selections >/dev/null; then
    printf '%s\n' \
      'wireshark-common wireshark-common/install-setuid boolean false' \
      'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections \
      || die "debconf-set-selections failed"
  fi
  apt-get update -q >/tmp/install-test-deps.apt-update.log 2>&1 \
    || { tail -n 20 /tmp/install-test-deps.apt-update.log >&2; die "apt-get update failed"; }
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/tmp/install-test-deps.apt-install.log 2>&1 \
    || { tail -n 30 /tmp/install-test-deps.apt-install.log >&2; die "apt-get install ${missing[*]} failed"; }
fi

# Verify what the harness actually executes, not just package state.
for f in /usr/lib/ipsec/charon /usr/sbin/swanctl /usr/bin/pki \
         /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so \
         /usr/bin/tshark /usr/bin/iperf3 /usr/sbin/nft /usr/bin/ping /usr/bin/dumpcap; do
  [ -e "$f" ] || die "missing $f after installation"
done
command -v ip >/dev/null || die "missing ip (iproute2) after installation"
echo "install-test-deps: ok (strongswan-charon $(dpkg-query -W -f='${Version}' strongswan-charon), tshark $(dpkg-query -W -f='${Version}' tshark), iperf3 $(dpkg-query -W -f='${Version}' iperf3))"
