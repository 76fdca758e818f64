#!/bin/sh
# Installs everything the test suite needs on Debian (as root): the real servers the tests
# start on loopback, and Assay with its test extras and the example third-party check pack.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own servers on their own loopback addresses; keep the packaged
  # daemons from starting on the standard ports (policy-rc.d 101 = "do not start").
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  # nmap: discovery; vsftpd, redis-server, nginx-light, inetutils-inetd + telnetd: the weak and
  # good servers the checks are tested against; postgresql: the store on a real server;
  # openssh-server: the weak and hardened sshd of the SSH audit and the host-hardening tests;
  # sudo: the host audit through sudo with a password (a throwaway assay-test-* account);
  # chromium (+ chromium-driver for Selenium): renders the HTML report and drives the dashboard.
  apt-get install -y -qq --no-install-recommends \
    nmap vsftpd redis-server nginx-light libnginx-mod-mail inetutils-inetd inetutils-telnetd postgresql \
    openssh-server openssh-client sudo chromium chromium-driver samba iproute2 \
    fonts-dejavu-core ca-certificates >/dev/null
fi
python3 -m pip install -q -e '.[test]'
python3 -m pip install -q ./tests/example_pack
