#!/usr/bin/env bash
# Installs what the mail tests run against a real mail server, when missing:
# Debian's postfix (the MTA), postgrey (greylisting), ssl-cert (the snakeoil
# certificate) and spamassassin (scoring our emails). The tests run private
# instances of their own (internal/postfixtest); the system's mail service is
# neither configured ("No configuration"), nor started, nor left running.
set -euo pipefail

missing=()
command -v postfix >/dev/null 2>&1 || missing+=(postfix)
command -v postgrey >/dev/null 2>&1 || missing+=(postgrey)
command -v spamassassin >/dev/null 2>&1 || missing+=(spamassassin)
[ -r /etc/ssl/certs/ssl-cert-snakeoil.pem ] && [ -r /etc/ssl/private/ssl-cert-snakeoil.key ] || missing+=(ssl-cert)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "ensure-postfix: installing Debian's ${missing[*]} for the mail tests" >&2

# One install at a time on this machine: the policy-rc.d swap below must
# not interleave with another run of this script.
exec 9>/tmp/signup-ensure-postfix.lock
flock 9

# Forbid every service start while the packages install (policy-rc.d exit
# 101 is Debian's "action forbidden"); whatever policy was in place before
# is put back afterwards.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
  saved=$(mktemp)
  $sudo cp -p "$policy" "$saved"
fi
restore() {
  if [ -n "$saved" ]; then $sudo cp -p "$saved" "$policy" && rm -f "$saved"; else $sudo rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# signup ensure-postfix.sh: no service starts during the install\nexit 101\n' | $sudo tee "$policy" >/dev/null
$sudo chmod 755 "$policy"

echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  postfix postgrey ssl-cert spamassassin >&2

# Keep the system's services from starting at boot, and stop any that a
# previous install left running: nothing of ours listens on port 25.
for svc in postfix postgrey spamd spamassassin; do
  if command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then $sudo systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    $sudo systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    $sudo update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
if $sudo postfix status >/dev/null 2>&1; then $sudo postfix stop >&2 || true; fi
# The snakeoil certificate is made by ssl-cert's postinst; make it if an
# earlier install skipped that.
if [ ! -r /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then $sudo make-ssl-cert generate-default-snakeoil >&2; fi
if command -v ss >/dev/null 2>&1 && ss -ltnH 'sport = :25' | grep -q .; then
  echo "ensure-postfix: warning: something listens on port 25; the tests do not need it" >&2
fi
