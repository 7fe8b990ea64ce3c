#!/bin/sh
# dev-instance.sh BUILD - create (once) and run the development instance in
# ./var/dev: config, self-signed certificate, domain example.test, user
# demo@example.test.  Runs yubind in the foreground on loopback ports.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DEV=$PWD/var/dev
CONF=$DEV/yubin.conf
YUBIN="$PWD/$BUILD/src/yubin/yubin"
YUBIND="$PWD/$BUILD/src/yubind/yubind"
mkdir -p "$DEV"

runas_line=""
data_dir=$DEV/data
if [ "$(id -u)" = 0 ]; then
	# yubind refuses to serve mail as root: it drops to this user.
	if ! getent passwd yubin >/dev/null; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin yubin
	fi
	runas_line="user = yubin"
	# The checkout may live where the yubin user cannot go (/root is 0700).
	if ! runuser -u yubin -- test -x "$DEV" 2>/dev/null; then
		data_dir=/var/lib/yubin-dev
		echo "note: $DEV is not reachable by user yubin; the store goes to $data_dir"
	fi
fi

if [ ! -s "$DEV/cert.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.example.test" \
		-addext "subjectAltName=DNS:mail.example.test,DNS:localhost,IP:127.0.0.1" \
		-keyout "$DEV/key.pem" -out "$DEV/cert.pem" 2>/dev/null
	chmod 600 "$DEV/key.pem"
fi

if [ ! -s "$CONF" ]; then
	cat >"$CONF" <<CONF
# Development instance made by \`make run\` (scripts/dev-instance.sh).
# Every key is explained in etc/yubin.conf.example.
hostname = mail.example.test
data_dir = $data_dir
$runas_line
postmaster = demo@example.test
tls_cert = $DEV/cert.pem
tls_key = $DEV/key.pem
# Loopback clients may log in without TLS, so curl and swaks work as shown.
plaintext_auth = loopback
listen_smtp = 127.0.0.1:2525
listen_pop3 = 127.0.0.1:2110
listen_pop3s = 127.0.0.1:2995
listen_imap = 127.0.0.1:2143
listen_imaps = 127.0.0.1:2993
listen_submission = 127.0.0.1:2587
listen_submissions = 127.0.0.1:2465
listen_https = 127.0.0.1:8443
CONF
fi
# Instances made before IMAP existed: add its ports (143 would need root).
grep -q '^listen_imap ' "$CONF" || printf 'listen_imap = 127.0.0.1:2143\nlisten_imaps = 127.0.0.1:2993\n' >>"$CONF"
# ... and before submission (587 and 465 would need root too).
grep -q '^listen_submission ' "$CONF" ||
	printf 'listen_submission = 127.0.0.1:2587\nlisten_submissions = 127.0.0.1:2465\n' >>"$CONF"
# ... and before JMAP (443 would need root).
grep -q '^listen_https ' "$CONF" || printf 'listen_https = 127.0.0.1:8443\n' >>"$CONF"

export YUBIN_CONF="$CONF"
if ! "$YUBIN" domain list | grep -qx example.test; then
	"$YUBIN" domain add example.test
fi
if [ ! -s "$DEV/demo-password" ]; then
	# base64 of 12 random bytes, without characters that need quoting
	openssl rand -base64 12 | tr '+/' '-_' >"$DEV/demo-password"
	chmod 600 "$DEV/demo-password"
fi
pw=$(cat "$DEV/demo-password")
if ! "$YUBIN" user list | grep -qx demo@example.test; then
	printf '%s\n' "$pw" | "$YUBIN" user add demo@example.test
fi

cat <<MSG

Yubin development instance (config: $CONF)
  user        demo@example.test   password: $pw
  SMTP        127.0.0.1:2525   (port 25 role: mail for example.test)
  POP3        127.0.0.1:2110   (STLS available)
  POP3S       127.0.0.1:2995   (implicit TLS, self-signed certificate $DEV/cert.pem)
  IMAP        127.0.0.1:2143   (STARTTLS available)
  IMAPS       127.0.0.1:2993   (implicit TLS)
  Submission  127.0.0.1:2587   (STARTTLS, then AUTH; mail to anywhere, as demo only)
  Submissions 127.0.0.1:2465   (implicit TLS)

Try it from another terminal:
  swaks --server 127.0.0.1:2525 --from you@example.org --to demo@example.test
  curl -s pop3://127.0.0.1:2110/ --user 'demo@example.test:$pw'
  curl -s pop3://127.0.0.1:2110/1 --user 'demo@example.test:$pw'
  curl -s --cacert $DEV/cert.pem pop3s://localhost:2995/ --user 'demo@example.test:$pw'
  curl -s 'imap://127.0.0.1:2143/INBOX;UID=1' --user 'demo@example.test:$pw'
  swaks --server 127.0.0.1:2587 --tls --auth-user demo@example.test --auth-password '$pw' \\
        --from demo@example.test --to someone@example.org    # then: yubin queue list
Administer it with: $BUILD/src/yubin/yubin -c $CONF user list
Stop with Ctrl-C.

MSG
exec "$YUBIND" -c "$CONF"
