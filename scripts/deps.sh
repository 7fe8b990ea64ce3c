#!/bin/sh
# deps.sh SET... - make sure the Debian packages a make target needs are
# installed.  As root it runs apt-get; otherwise it prints the one command
# to run and fails.  Sets: build, run, test, bench.
set -eu

pkgs_build="meson ninja-build pkg-config gcc libuv1-dev libssl-dev libsqlite3-dev libsodium-dev zlib1g-dev libunbound-dev libcurl4-openssl-dev libxml2-dev libjansson-dev libh2o-dev openssl"
pkgs_run="$pkgs_build swaks curl dns-root-data"
pkgs_test="$pkgs_build clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest swaks libnet-ssleay-perl libio-socket-ssl-perl curl fetchmail isync interimap unbound ldnsutils postfix dovecot-imapd dovecot-pop3d chromium npm"
pkgs_bench="$pkgs_build postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd python3"

want=""
for set in "$@"; do
	case "$set" in
	build) want="$want $pkgs_build" ;;
	run) want="$want $pkgs_run" ;;
	test) want="$want $pkgs_test" ;;
	bench) want="$want $pkgs_bench" ;;
	*) echo "deps.sh: unknown set $set" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	# npm also comes inside other nodejs builds (nodesource's "Provides: npm")
	[ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# The browser tests' playwright-core (tests/browser/package-lock.json), with
# npm ci into tests/browser/node_modules when it is missing or stale.
browser_deps() {
	case " $want " in *" npm "*) ;; *) return 0 ;; esac
	dir=$(dirname "$0")/../tests/browser
	[ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
	echo "deps.sh: npm ci in tests/browser"
	(cd "$dir" && npm ci --no-audit --no-fund)
}

[ -z "$missing" ] && { browser_deps; exit 0; }

if [ "$(id -u)" = 0 ]; then
	echo "deps.sh: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# postfix asks questions at install time; answer them up front.
	if echo "$missing" | grep -q postfix; then
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	fi
	apt-get update -q || true
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
	browser_deps
else
	echo "Missing Debian packages. Install them with:" >&2
	echo "  sudo apt-get install$missing" >&2
	exit 1
fi
