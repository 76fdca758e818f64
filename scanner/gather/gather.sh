# Assay host facts gatherer (POSIX sh). Read-only: it runs queries and reads files, it never
# changes the host and writes nothing to disk. Assay prepends the ASSAY_* variables and sends
# the whole script in one exec; every fact source prints one delimited section:
#   @@assay-<nonce> BEGIN <name>      ...output...      @@assay-<nonce> END <name> <rc>
# rc 127 means the command is not installed on the target, 126 not permitted. The nonce is
# random per run, so a file or a login banner cannot forge a section boundary.
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077
M="@@assay-$ASSAY_NONCE"
R="$ASSAY_ROOT"
have() { command -v "$1" >/dev/null 2>&1; }
need() { have "$1" || { echo "command not found: $1"; exit 127; }; }
if have timeout; then T="timeout $ASSAY_CMD_TIMEOUT"; else T=""; fi
sec() {
  printf '\n%s BEGIN %s\n' "$M" "$1"
  ( "$2" ) </dev/null 2>/dev/null
  rc=$?
  printf '\n%s END %s %s\n' "$M" "$1" "$rc"
}
catf() { for f in "$@"; do [ -r "$f" ] && { echo "== $f"; cat "$f"; }; done; return 0; }
nocomment() { grep -v -E '^[[:space:]]*(#|$)' "$@"; }

s_meta() {
  echo "uid $(id -u)"
  echo "kernel $(uname -srm)"
  echo "hostname $(uname -n)"
  echo "time $(date +%s)"
  if have systemd-detect-virt; then echo "virt $(systemd-detect-virt 2>/dev/null)"; fi
  [ -e /.dockerenv ] && echo "container docker"
  [ -e /run/.containerenv ] && echo "container podman"
  [ -d /run/systemd/system ] && echo "init systemd"
  echo "pid1 $(cat /proc/1/comm 2>/dev/null)"
  return 0
}
s_os_release() { cat "$R/etc/os-release" 2>/dev/null || cat "$R/usr/lib/os-release"; }
s_sshd() {
  need sshd
  if [ -n "$ASSAY_SSHD_CONFIG" ]; then out=$(sshd -T -f "$ASSAY_SSHD_CONFIG" 2>&1); else out=$(sshd -T 2>&1); fi
  rc=$?
  printf '%s\n' "$out"
  return $rc
}
s_passwd() { cat "$R/etc/passwd"; }
# The shadow file never leaves the host: only whether a password is empty, locked or set,
# the hash scheme, and the ageing fields.
s_shadow() {
  [ -r "$R/etc/shadow" ] || { echo "not readable"; exit 126; }
  awk -F: '{ p = $2; s = "hash";
    if (p == "") s = "empty";
    else if (p ~ /^[!*]/) s = "locked";
    scheme = "";
    if (s == "hash" && p ~ /^\$/) { split(p, a, "$"); scheme = a[2] }
    else if (s == "hash") scheme = "des";
    print $1 ":" s ":" scheme ":" $3 ":" $4 ":" $5 ":" $6 ":" $7 ":" $8 }' "$R/etc/shadow"
}
s_group() { awk -F: '{ print $1 ":" $3 ":" $4 }' "$R/etc/group"; }
s_login_defs() { nocomment "$R/etc/login.defs"; }
s_pam() {
  for f in common-password common-auth common-account system-auth password-auth login sshd su; do
    [ -r "$R/etc/pam.d/$f" ] && { echo "== pam.d/$f"; nocomment "$R/etc/pam.d/$f"; }
  done
  for f in "$R"/etc/security/pwquality.conf "$R"/etc/security/pwquality.conf.d/*.conf \
      "$R"/etc/security/faillock.conf "$R"/etc/security/limits.conf "$R"/etc/security/limits.d/*.conf; do
    [ -r "$f" ] && { echo "== ${f#"$R"/etc/}"; nocomment "$f"; }
  done
  return 0
}
s_sudoers() {
  [ -e "$R/etc/sudoers" ] || { echo "no /etc/sudoers"; return 0; }
  [ -r "$R/etc/sudoers" ] || { echo "not readable"; exit 126; }
  for f in "$R/etc/sudoers" "$R"/etc/sudoers.d/*; do
    [ -r "$f" ] && { echo "== ${f#"$R"}"; nocomment "$f"; }
  done
  return 0
}
s_packages() {
  if have dpkg-query; then
    dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'
  elif have rpm; then
    rpm --root="${R:-/}" -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\tii \n'
  else
    echo "command not found: dpkg-query, rpm"; exit 127
  fi
}
# Pending security updates. On Debian/Ubuntu the installed versions are compared with the
# security archive's package lists (what apt would install from there), which takes a
# fraction of a second where `apt-get -s upgrade` can take seconds; without those lists the
# upgrade simulation is used.
s_updates() {
  if have dpkg-query && [ -x /usr/lib/apt/apt-helper ]; then
    lists=$(ls "$R"/var/lib/apt/lists/*security*_Packages* 2>/dev/null)
    if [ -n "$lists" ]; then
      echo "method security-lists"
      { dpkg-query --admindir="$R/var/lib/dpkg" -W -f='I ${Package} ${Version} ${db:Status-Abbrev}\n'
        for f in $lists; do /usr/lib/apt/apt-helper cat-file "$f"; done \
          | awk '/^Package: /{p=$2} /^Version: /{print "S " p " " $2}'
      } | awk '$1=="I" { if ($4 ~ /^[ih]i/) inst[$2]=$3; next }
               $1=="S" && ($2 in inst) && inst[$2] != $3 { print $2, inst[$2], $3 }' \
        | sort -u | while read -r p cur new; do
          dpkg --compare-versions "$new" gt "$cur" && echo "Inst $p [$cur] ($new Debian-Security:lists)"
        done
      return 0
    fi
  fi
  if have apt-get; then
    echo "method apt-get"
    $T apt-get -s -o Debug::NoLocking=1 upgrade | grep '^Inst '
    return 0
  elif have dnf; then
    echo "method dnf"
    $T dnf -q -C updateinfo list --security --available; return 0
  elif have yum; then
    echo "method yum"
    $T yum -q -C updateinfo list security; return 0
  fi
  echo "command not found: apt-get, dnf, yum"; exit 127
}
s_apt_config() {
  need apt-config
  apt-config dump | grep -i -E '^(APT::Periodic|Unattended-Upgrade)'
  return 0
}
s_dnf_automatic() { catf "$R/etc/dnf/automatic.conf"; }
s_reboot() { [ -e "$R/var/run/reboot-required" ] && echo "reboot-required"; return 0; }
s_sysctl() {
  if have sysctl; then sysctl -e $ASSAY_SYSCTL_KEYS 2>/dev/null; return 0; fi
  for k in $ASSAY_SYSCTL_KEYS; do
    p="/proc/sys/$(printf '%s' "$k" | tr . /)"
    [ -r "$p" ] && printf '%s = %s\n' "$k" "$(cat "$p" 2>/dev/null)"
  done
  return 0
}
s_files() {
  need stat
  for f in $ASSAY_FILES; do
    if [ -e "$R$f" ] || [ -L "$R$f" ]; then
      stat -c "%a|%u|%g|%U|%G|%F|$f" "$R$f"
    else
      echo "missing|||||-|$f"
    fi
  done
  return 0
}
s_find() {
  need find
  for d in $ASSAY_FIND_PATHS; do
    [ -d "$R$d" ] || continue
    $T find "$R$d" -xdev \( -type f -perm -0002 -printf 'W %m %u %p\n' \) -o \
      \( -type d -perm -0002 ! -perm -1000 -printf 'D %m %u %p\n' \) -o \
      \( -type f \( -perm -4000 -o -perm -2000 \) -printf 'S %m %u %p\n' \)
  done | head -n "$ASSAY_FIND_LIMIT"
  return 0
}
s_mounts() { cat /proc/mounts; }
s_fstab() { [ -r "$R/etc/fstab" ] && nocomment "$R/etc/fstab"; return 0; }
s_crypttab() { [ -r "$R/etc/crypttab" ] && nocomment "$R/etc/crypttab"; return 0; }
s_lsblk() { need lsblk; lsblk -rno NAME,TYPE,FSTYPE,MOUNTPOINT; }
s_fw_nft() { need nft; nft list ruleset; }
s_fw_iptables() { need iptables; iptables -S; rc=$?; ip6tables -S 2>/dev/null | sed 's/^/v6 /'; return $rc; }
s_fw_ufw() { need ufw; ufw status verbose; }
s_fw_firewalld() { need firewall-cmd; firewall-cmd --state; firewall-cmd --list-all; }
s_listening() {
  if have ss; then ss -H -tulnp; elif have netstat; then netstat -tulnp | tail -n +3;
  else echo "command not found: ss, netstat"; exit 127; fi
}
s_units() {
  need systemctl
  [ -d /run/systemd/system ] || { echo "systemd is not running"; exit 3; }
  systemctl list-unit-files --type=service,socket,timer --no-legend --no-pager
  echo "== running"
  systemctl list-units --type=service,socket --state=running,listening --no-legend --no-pager
}
s_processes() { ps -e -o comm= | sort -u; }
s_journald() {
  catf "$R/etc/systemd/journald.conf" "$R"/etc/systemd/journald.conf.d/*.conf \
    "$R"/usr/lib/systemd/journald.conf.d/*.conf
  [ -d "$R/var/log/journal" ] && echo "== dir /var/log/journal"
  return 0
}
s_rsyslog() {
  catf "$R/etc/rsyslog.conf" "$R"/etc/rsyslog.d/*.conf "$R/etc/syslog-ng/syslog-ng.conf" \
    | grep -v -E '^[[:space:]]*(#|$)'
  return 0
}
s_logrotate() { catf "$R/etc/logrotate.conf" | grep -v -E '^[[:space:]]*(#|$)'; return 0; }
s_audit() {
  need auditctl
  auditctl -s
  echo "== rules"
  auditctl -l
}
s_cmdline() { cat /proc/cmdline; }
s_time() {
  if have timedatectl && [ -d /run/systemd/system ]; then timedatectl show; fi
  catf "$R/etc/chrony/chrony.conf" "$R/etc/chrony.conf" "$R/etc/ntp.conf" "$R/etc/ntpsec/ntp.conf" \
    "$R/etc/systemd/timesyncd.conf" | grep -v -E '^[[:space:]]*(#|$)'
  return 0
}
s_modules() {
  for m in $ASSAY_MODULES; do
    if grep -q "^$m " /proc/modules 2>/dev/null; then l=loaded; else l=notloaded; fi
    if have modprobe; then d=$(modprobe -n -v "$m" 2>&1 | tr '\n' ';'); else d="?"; fi
    echo "$m|$l|$d"
  done
  return 0
}
s_mac() {
  [ -r /sys/module/apparmor/parameters/enabled ] && echo "apparmor_enabled $(cat /sys/module/apparmor/parameters/enabled)"
  [ -r /sys/kernel/security/apparmor/profiles ] && echo "apparmor_profiles $(wc -l </sys/kernel/security/apparmor/profiles)"
  [ -r /sys/kernel/security/apparmor/profiles ] && echo "apparmor_complain $(grep -c '(complain)' /sys/kernel/security/apparmor/profiles)"
  have getenforce && echo "selinux $(getenforce 2>/dev/null)"
  return 0
}
s_coredump() { catf "$R/etc/systemd/coredump.conf" "$R"/etc/systemd/coredump.conf.d/*.conf | grep -v -E '^[[:space:]]*(#|$)'; return 0; }
s_nginx() {
  need nginx
  nginx -v 2>&1
  out=$($T nginx -T 2>&1); rc=$?
  printf '%s\n' "$out" | head -c 1048576
  return $rc
}
s_vsftpd() { catf "$R/etc/vsftpd.conf" "$R/etc/vsftpd/vsftpd.conf" | grep -v -E '^[[:space:]]*(#|$)'; return 0; }
# requirepass and masterauth values never leave the host.
s_redis() {
  catf "$R/etc/redis/redis.conf" "$R/etc/redis.conf" | grep -v -E '^[[:space:]]*(#|$)' \
    | grep -i -E '^(==|bind|protected-mode|port|requirepass|masterauth|rename-command|user|aclfile|tls-port)' \
    | sed -E 's/^(requirepass|masterauth)[[:space:]]+.*/\1 <set>/I; /^user/ s/[[:space:]][>#][^[:space:]]*/ <secret>/g'
  return 0
}
s_issue() { catf "$R/etc/issue" "$R/etc/issue.net" "$R/etc/motd"; }

# The two slow sources (the package manager's upgrade simulation and the file-system walk)
# run beside the others; their output waits in a pipe and follows once the rest is printed.
# Everything sits in one function so the shell has read the whole script before it starts.
main() {
  echo "$M START"
  for s in $ASSAY_SECTIONS; do
    case "$s" in find|updates) ;; *) sec "$s" "s_$s" ;; esac
  done
}
one() { case " $ASSAY_SECTIONS " in *" $1 "*) sec "$1" "s_$1" ;; esac; }
all() {
  one find </dev/null | { one updates </dev/null | { main </dev/null; cat; }; cat; }
  echo "$M DONE"
}
all
