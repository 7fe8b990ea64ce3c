#!/bin/sh
# bench/run.sh [BUILD_DIR] - `make bench`: Yubin next to Postfix + Dovecot.
#
# Prints figures, never asserts a time.  Exit status 0 unless something broke
# (yubind would not start, a bench tool failed, messages were lost, yubind
# did not stop cleanly); the peer half is skipped with a reason when it
# cannot run (not root, packages missing).
#
#  2. a throw-away yubind (temp dir under /tmp), domain example.test,
#     user1..user100@example.test with password "pass"
#  3. shared/bench/smtp_accept.sh against yubind, verified over POP3 by
#     bench/pop3_count.py (APOP logins by default, see BENCH_VERIFY)
#  4. yubind CPU per message (/proc/PID/stat) and memory (VmRSS, VmHWM)
#  5. one USER/PASS pass of pop3_count.py (cross-check, cost of a password
#     login), then shared/bench/pop3_fetch.py; 5b. bytes of yubind memory per
#     idle SMTP and POP3 connection (bench/idle_conns.py)
#  6. the same against Postfix + Dovecot (shared/peers/start.sh --reset),
#     CPU summed over both process trees (bench/cpu.py)
#  7. the comparison table (bench/report.py)
#  8. disk ceiling: shared/bench/fsync_limit.py on the temp directory (last:
#     its mass file deletion slows file creation for minutes afterwards)
#  y5f/p6f. webmail (bench/webmail.py): user2's INBOX filled to BENCH_BIGBOX
#     messages; JMAP Email/query+get of the newest 50, the page's load time
#     in chromium, the compressed assets; Dovecot's IMAP SORT+FETCH of 50
#  9. outbound (bench/outbound.py, after 8: its 100,000-message drain deletes
#     as many files): a yubind and a Postfix of its own relaying into
#     Postfix's smtp-sink (throughput, connection reuse), then 100,000
#     messages to a dead destination (memory, idle CPU, time to drain)
#
# BUILD_DIR defaults to build (relative to the repository).  Environment:
#   BENCH_MESSAGES=5000     messages per SMTP run (smtp_accept.sh --messages)
#   BENCH_SESSIONS=20       parallel SMTP sessions
#   BENCH_VERIFY=apop       how the POP3 poller logs in: apop (default) or
#                           pass (USER/PASS: 100 argon2id checks a pass,
#                           seconds of server CPU each; see docs/BENCH.md)
#   BENCH_SKIP_FSYNC=1      skip step 8        BENCH_SKIP_PEERS=1  skip step 6
#   BENCH_SKIP_OUTBOUND=1   skip step 9
#   BENCH_OUT_MESSAGES=5000 messages per outbound throughput run (10 KiB)
#   BENCH_OUT_SESSIONS=10   parallel submitting sessions in step 9
#   BENCH_DEAD_MESSAGES=100000  messages queued to the dead destination
#   BENCH_KEEP=1            keep the temp directory (logs, data) for a look
#   BENCH_KIT, BENCH_PEERS  the shared kit (default ../shared/{bench,peers})
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
YUBIND=$BUILD/src/yubind/yubind
YUBIN=$BUILD/src/yubin/yubin
KIT=${BENCH_KIT:-$REPO/../shared/bench}
PEERKIT=${BENCH_PEERS:-$REPO/../shared/peers}
MESSAGES=${BENCH_MESSAGES:-5000}
SESSIONS=${BENCH_SESSIONS:-20}
VERIFY_LOGIN=${BENCH_VERIFY:-apop}
APOP_SECRET=bench-apop-secret
NUSERS=100
PY=${PYTHON:-python3}

# Deadlines (seconds) for every step; nothing waits forever.
T_FSYNC=180; T_CLI=60; T_READY=60; T_SMTP=900; T_FETCH=600; T_PEERS=300; T_STOP=30
T_OUTBOUND=${BENCH_OUT_DEADLINE:-3600}

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$YUBIND" ] || die "$YUBIND not built (ninja -C $BUILD)"
[ -x "$YUBIN" ] || die "$YUBIN not built (ninja -C $BUILD)"
[ -f "$KIT/smtp_accept.sh" ] || die "shared bench kit not found at $KIT"
case $MESSAGES in ''|*[!0-9]*) die "BENCH_MESSAGES must be a number" ;; esac
case $SESSIONS in ''|*[!0-9]*) die "BENCH_SESSIONS must be a number" ;; esac
case $VERIFY_LOGIN in apop|pass) ;; *) die "BENCH_VERIFY must be apop or pass" ;; esac
for v in "${BENCH_OUT_MESSAGES:-1}" "${BENCH_OUT_SESSIONS:-1}" "${BENCH_DEAD_MESSAGES:-1}"; do
	case $v in ''|*[!0-9]*) die "BENCH_OUT_MESSAGES, BENCH_OUT_SESSIONS and BENCH_DEAD_MESSAGES must be numbers" ;; esac
done

TMP=$(mktemp -d /tmp/yubin-bench.XXXXXX) || die "mktemp failed"
chmod 0711 "$TMP"   # yubind drops to nobody and must reach data/
RESULTS=$TMP/results
: >"$RESULTS"
BROKE=0
YPID=
PEERS_UP=0

broke() { echo "bench: BROKEN: $*"; BROKE=1; }

# running PID: a live process that is not a zombie (our own unreaped child)
running() {
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $s in Z*) return 1 ;; esac
	return 0
}

stop_yubind() {
	[ -n "$YPID" ] || return 0
	pid=$YPID
	YPID=
	kill -TERM "$pid" 2>/dev/null
	n=0
	while running "$pid" && [ $n -lt $((T_STOP * 10)) ]; do sleep 0.1; n=$((n + 1)); done
	if running "$pid"; then
		broke "yubind did not exit ${T_STOP}s after SIGTERM; killed"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid"
	rc=$?
	if [ $rc -gt 128 ]; then
		broke "yubind was killed by signal $((rc - 128)) (exit status $rc)"
	elif [ $rc -ne 0 ]; then
		broke "yubind exit status $rc after SIGTERM (want 0)"
	fi
}

# show the yubind log's warnings and errors (the bench runs it at warn)
yubind_log() {
	NW=$(grep -c -E ': (warning|error): ' "$Y/yubind.log")
	if [ -s "$Y/yubind.log" ]; then
		echo "   yubind log: $NW warning/error lines; the last lines:"
		tail -n "${1:-10}" "$Y/yubind.log" | sed 's/^/   | /'
	else
		echo "   yubind log: empty (log_level = warn: no warnings, no errors)"
	fi
}

stop_peers() {
	[ $PEERS_UP = 1 ] || return 0
	PEERS_UP=0
	timeout -k 5 60 bash "$PEERKIT/stop.sh" >/dev/null 2>&1 || echo "bench: peers/stop.sh failed"
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	stop_yubind
	stop_peers
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# run STEP TIMEOUT CMD...: run with a deadline, show the output as it comes,
# keep it in $TMP/STEP.out; returns the command's status (124 = timed out)
run() {
	step=$1 secs=$2
	shift 2
	{ timeout -k 10 "$secs" "$@" 2>&1; echo $? >"$TMP/$step.rc"; } | tee "$TMP/$step.out"
	rc=$(cat "$TMP/$step.rc")
	[ "$rc" = 124 ] && echo "bench: $step timed out after ${secs}s"
	return "$rc"
}

# keep LABEL STEP: add the step's RESULT line to the results file
keep() {
	grep '^RESULT ' "$TMP/$2.out" | tail -1 | sed "s/^/$1 /" >>"$RESULTS"
}

# kv STEP KEY: a value from the step's RESULT line
kv() {
	grep '^RESULT ' "$TMP/$1.out" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

HZ=$(getconf CLK_TCK)
echo "== Yubin bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -sr)"
echo "   build $BUILD, $MESSAGES messages x 10 KiB, $SESSIONS SMTP sessions, $NUSERS users"

# imap_steps LABEL PREFIX PORT PID...: bigbox, then imap_load in both
# profiles with the server's CPU (the PIDs and their children) around each
BIGBOX=${BENCH_BIGBOX:-100000}
LOAD_CLIENTS=${BENCH_LOAD_CLIENTS:-50}
LOAD_SECONDS=${BENCH_LOAD_SECONDS:-20}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
T_BIGBOX=900
imap_steps() {
	lb=$1 px=$2 port=$3
	shift 3
	echo "== ${px}c. bigbox: $BIGBOX messages in one mailbox ($lb)"
	run "${px}_bigbox" "$T_BIGBOX" "$PY" "$KIT/bigbox.py" --port "$port" --count "$BIGBOX" \
		--runs 3 || broke "bigbox.py ($lb) failed"
	keep "$lb" "${px}_bigbox"
	echo "== ${px}c2. QRESYNC resync of that mailbox after 100 flag changes and 10 expunges ($lb)"
	run "${px}_qresync" 300 "$PY" "$HERE/qresync.py" --port "$port" \
		|| broke "qresync.py ($lb) failed"
	keep "$lb" "${px}_qresync"
	for prof in login nologin; do
		echo "== ${px}d. imap_load, $prof profile, $LOAD_CLIENTS clients for ${LOAD_SECONDS}s ($lb)"
		c0=$("$PY" "$HERE/cpu.py" ticks "$@")
		run "${px}_load_$prof" 300 "$PY" "$HERE/imap_load.py" --port "$port" --profile "$prof" \
			--clients "$LOAD_CLIENTS" --seconds "$LOAD_SECONDS" \
			|| broke "imap_load.py $prof ($lb) failed"
		c1=$("$PY" "$HERE/cpu.py" ticks "$@")
		cpu=$(echo "$c0 $c1 $HZ" | awk '{printf "%.1f", ($2 - $1) / $3}')
		echo "   server CPU during the run: $cpu s"
		sed -i "s/^RESULT imap_load /RESULT imap_load_$prof server_cpu_s=$cpu /" \
			"$TMP/${px}_load_$prof.out"
		keep "$lb" "${px}_load_$prof"
	done
}

# ---- 2. a throw-away yubind --------------------------------------------
echo "== 2. yubind instance in $TMP/yubin"
Y=$TMP/yubin
CONF=$Y/yubin.conf
mkdir -p "$Y/data"
chmod 0711 "$Y"
user_line=
if [ "$(id -u)" = 0 ]; then
	user_line="user = nobody"
	chown nobody "$Y/data"   # the CLI drops to nobody too
fi
cat >"$CONF" <<EOF
# throw-away instance made by bench/run.sh
hostname = mx.example.test
data_dir = $Y/data
$user_line
plaintext_auth = loopback
listen_smtp = 127.0.0.1:0
listen_pop3 = 127.0.0.1:0
listen_pop3s =
listen_imap = 127.0.0.1:0
listen_imaps = 127.0.0.1:0
listen_submission = 127.0.0.1:0
listen_submissions =
listen_https = 127.0.0.1:0
dns_trust_anchor =
tls_cert = $Y/cert.pem
tls_key = $Y/key.pem
log_level = warn
max_connections_per_ip = 25000
max_connections = 25000
imap_max_sessions_per_ip = 25000
imap_max_sessions_per_user = 1000
EOF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$Y/key.pem" -out "$Y/cert.pem" -days 7 \
	-subj /CN=mx.example.test >/dev/null 2>&1 || die "openssl could not make a certificate"
chmod 0644 "$Y/key.pem"   # a throw-away key, read before privileges are dropped
cli() { timeout -k 5 "$T_CLI" "$YUBIN" -c "$CONF" "$@"; }
cli domain add example.test || die "yubin domain add failed"
t=$(date +%s)
i=1
while [ $i -le $NUSERS ]; do
	printf 'pass\n' | cli user add "user$i@example.test" || die "yubin user add user$i failed"
	printf '%s\n' "$APOP_SECRET" | cli user apop "user$i@example.test" \
		|| die "yubin user apop user$i failed"
	i=$((i + 1))
done
echo "   domain example.test, $NUSERS users (password \"pass\", APOP secret) made in $(($(date +%s) - t)) s"

"$YUBIND" -c "$CONF" </dev/null >>"$Y/yubind.log" 2>&1 &
YPID=$!
PORTS=$("$PY" "$HERE/yubind_ready.py" --pid "$YPID" --log "$Y/yubind.log" --timeout "$T_READY")
if [ -z "$PORTS" ]; then
	echo "---- yubind log ----"; tail -20 "$Y/yubind.log"
	die "yubind did not become ready"
fi
SMTP_PORT=$(echo "$PORTS" | sed -n 's/.*smtp=\([0-9]*\).*/\1/p')
POP3_PORT=$(echo "$PORTS" | sed -n 's/.*pop3=\([0-9]*\).*/\1/p')
IMAP_PORT=$(echo "$PORTS" | sed -n 's/.*imap=\([0-9]*\).*/\1/p')
IMAPS_PORT=$(echo "$PORTS" | sed -n 's/.*imaps=\([0-9]*\).*/\1/p')
HTTPS_PORT=$(echo "$PORTS" | sed -n 's/.*https=\([0-9]*\).*/\1/p')
echo "   yubind pid $YPID ready: SMTP 127.0.0.1:$SMTP_PORT, POP3 127.0.0.1:$POP3_PORT," \
	"IMAP 127.0.0.1:$IMAP_PORT, IMAPS 127.0.0.1:$IMAPS_PORT"

# ---- 3. SMTP acceptance, verified over POP3 ------------------------------
echo "== 3. smtp_accept against yubind (verified over POP3, $VERIFY_LOGIN logins)"
STAMPS=$TMP/pop3_count.stamps
: >"$STAMPS"
COUNT="$PY '$HERE/pop3_count.py' --port $POP3_PORT --users $NUSERS"
VERIFY="$COUNT --stamp '$STAMPS' --cpu-pid $YPID"
[ "$VERIFY_LOGIN" = apop ] && VERIFY="$VERIFY --apop-secret $APOP_SECRET"
C0=$("$PY" "$HERE/cpu.py" ticks "$YPID")
# --imap-port 1: smtp_accept's IMAP cross-check has nothing to ask here;
# --timeout 120: yubind makes mail visible before its 250 reply
run y_smtp "$T_SMTP" bash "$KIT/smtp_accept.sh" --port "$SMTP_PORT" --messages "$MESSAGES" \
	--sessions "$SESSIONS" --users "$NUSERS" --verify-cmd "$VERIFY" --imap-port 1 --timeout 120 \
	|| broke "smtp_accept.sh against yubind failed"
C1=$("$PY" "$HERE/cpu.py" ticks "$YPID" 2>/dev/null || echo "")
MEM=$("$PY" "$HERE/cpu.py" mem "$YPID" 2>/dev/null || echo "")
keep yubin y_smtp
Y_ACC=$(kv y_smtp accepted)
Y_DLV=$(kv y_smtp delivered)
[ "${Y_ACC:-0}" = "$MESSAGES" ] || broke "yubind accepted ${Y_ACC:-?} of $MESSAGES messages"
[ "${Y_DLV:-0}" = "${Y_ACC:-x}" ] || broke "POP3 shows ${Y_DLV:-?} of ${Y_ACC:-?} accepted messages"

if ! running "$YPID"; then
	broke "yubind (pid $YPID) died during the SMTP run; steps 4 and 5 skipped"
	yubind_log 30
	stop_yubind
fi

# ---- 4. CPU per message and memory of yubind ---------------------------
if [ -n "$YPID" ]; then
echo "== 4. yubind CPU and memory"
if [ -n "$C1" ] && [ -n "$MEM" ]; then
	# the POP3 verifier's passes (100 logins each) are measured by
	# pop3_count.py itself and reported apart from the mail work
	"$PY" - "$C0" "$C1" "$HZ" "${Y_DLV:-0}" "$STAMPS" "$MEM" <<'EOF' | tee "$TMP/y_cpu.out"
import sys
c0, c1, hz, n, stamps, mem = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5], sys.argv[6]
passes, vt, vwall = 0, 0, 0.0
for line in open(stamps):
    w = line.split()
    if len(w) >= 5 and int(w[3]) >= 0 and int(w[4]) >= 0:
        passes += 1
        vt += int(w[4]) - int(w[3])
        vwall += float(w[1]) - float(w[0])
raw = (c1 - c0) * 1000.0 / hz
ver = vt * 1000.0 / hz
net = raw - ver
per = lambda ms: ms / n if n else 0.0
print("   yubind CPU %.2f s over the SMTP run; %d POP3 verifier passes took %.2f s of it "
      "(%.1f s wall); the rest, %.2f s, is the mail" % (raw / 1000, passes, ver / 1000, vwall, net / 1000))
print("RESULT yubin_cpu cpu_ms_per_msg=%.3f cpu_ms_per_msg_raw=%.3f messages=%d verify_passes=%d "
      "verify_cpu_s=%.2f %s" % (per(net), per(raw), n, passes, ver / 1000, mem))
EOF
	keep yubin y_cpu
else
	broke "yubind (pid $YPID) is gone after the SMTP run"
fi

# ---- 5. POP3: password logins, then download ----------------------------
echo "== 5. POP3 against yubind: one USER/PASS pass over all users, then pop3_fetch"
# one pass with USER/PASS as a cross-check, and what a password login costs
: >"$TMP/pass.stamps"
N=$(eval "timeout -k 5 300 $COUNT --stamp '$TMP/pass.stamps' --cpu-pid $YPID" | tail -1)
MEM2=$("$PY" "$HERE/cpu.py" mem "$YPID" 2>/dev/null || echo "")
[ -s "$TMP/pass.stamps" ] && "$PY" - "$TMP/pass.stamps" "$HZ" "$NUSERS" "$N" "$MEM2" <<'EOF' \
	| tee "$TMP/y_login.out"
import sys
w = open(sys.argv[1]).read().split()
hz, users, n, mem = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cpu = (int(w[4]) - int(w[3])) / hz
wall = float(w[1]) - float(w[0])
print("   %s messages visible; %d password logins (8 at a time) took %.2f s wall, "
      "%.2f s yubind CPU; memory then: %s" % (n, users, wall, cpu, mem))
print("RESULT yubin_login logins=%d wall_s=%.2f cpu_ms_per_login=%.1f %s"
      % (users, wall, cpu * 1000 / users, mem))
EOF
[ "$N" = "${Y_DLV:-x}" ] || broke "USER/PASS pass counts ${N:-?} messages, the poller ${Y_DLV:-?}"

run y_fetch "$T_FETCH" "$PY" "$KIT/pop3_fetch.py" --port "$POP3_PORT" --users "$NUSERS" \
	|| broke "pop3_fetch.py against yubind failed"
keep yubin y_fetch
F=$(kv y_fetch messages)
[ "${F:-0}" = "${Y_DLV:-x}" ] || broke "pop3_fetch got ${F:-?} messages, POP3 STAT showed ${Y_DLV:-?}"

echo "== 5b. idle connections: yubind memory per connection (1000 SMTP after EHLO, 1000 POP3)"
run y_idle 120 "$PY" "$HERE/idle_conns.py" --pid "$YPID" --conns 1000 --smtp "$SMTP_PORT" \
	--pop3 "$POP3_PORT" || broke "idle_conns.py against yubind failed"

# ---- 5c-5e. IMAP ----------------------------------------------------------
imap_steps yubin y5 "$IMAP_PORT" "$YPID"
echo "== y5e. $IDLE_CONNS IMAP sessions in IDLE, plaintext, then under TLS (yubind memory)"
run y_idle_imap 600 "$PY" "$KIT/idle_mem.py" --pids "$YPID" --port "$IMAP_PORT" \
	--conns "$IDLE_CONNS" || broke "idle_mem.py against yubind failed"
keep yubin y_idle_imap
run y_idle_tls 900 "$PY" "$HERE/idle_imap_tls.py" --pid "$YPID" --port "$IMAPS_PORT" \
	--conns "$IDLE_CONNS" || broke "idle_imap_tls.py against yubind failed"
keep yubin y_idle_tls
echo "== y5f. webmail: user2's INBOX filled to $BIGBOX messages; JMAP, the page, its assets"
run y_webmail 1800 "$PY" "$HERE/webmail.py" yubin --imap-port "$IMAP_PORT" \
	--imaps-port "$IMAPS_PORT" --https-port "$HTTPS_PORT" --count "$BIGBOX" \
	|| broke "webmail.py against yubind failed"
keep yubin y_webmail

yubind_log 10
stop_yubind
fi   # yubind alive after the SMTP run

# ---- 6. the peers: Postfix + Dovecot -----------------------------------
echo "== 6. Postfix + Dovecot (shared/peers)"
skip=
if [ "${BENCH_SKIP_PEERS:-0}" = 1 ]; then
	skip="BENCH_SKIP_PEERS=1"
elif [ "$(id -u)" != 0 ]; then
	skip="not root (the peers need root: they run as postfix, dovecot and vmail)"
elif ! command -v postfix >/dev/null 2>&1 || ! command -v dovecot >/dev/null 2>&1; then
	skip="postfix or dovecot not installed (sh scripts/deps.sh bench)"
elif [ ! -f "$PEERKIT/start.sh" ]; then
	skip="peer kit not found at $PEERKIT"
fi
if [ -z "$skip" ]; then
	timeout -k 5 60 bash "$PEERKIT/stop.sh" >/dev/null 2>&1   # a leftover pair from an earlier run
	PEERS_UP=1
	if ! run peers_start "$T_PEERS" bash "$PEERKIT/start.sh" --reset >/dev/null; then
		sed 's/^/   /' "$TMP/peers_start.out"
		skip="peers/start.sh --reset failed"
		stop_peers
	fi
fi
if [ -n "$skip" ]; then
	echo "   skipped: $skip"
else
	sed 's/^/   /' "$TMP/peers_start.out"
	PEERS_DIR=${PEERS:-/tmp/peers}
	DC_PID=$(tr -dc 0-9 <"$PEERS_DIR/dovecot/run/master.pid")
	PF_PID=$(tr -dc 0-9 <"$PEERS_DIR/postfix/spool/pid/master.pid")
	echo "== 6a. smtp_accept against Postfix :10025 (verified over Dovecot IMAP :10143)"
	P0=$("$PY" "$HERE/cpu.py" ticks "$DC_PID" "$PF_PID")
	run p_smtp "$T_SMTP" bash "$KIT/smtp_accept.sh" --port 10025 --imap-port 10143 \
		--messages "$MESSAGES" --sessions "$SESSIONS" --users "$NUSERS" \
		|| broke "smtp_accept.sh against the peers failed"
	P1=$("$PY" "$HERE/cpu.py" ticks "$DC_PID" "$PF_PID" 2>/dev/null || echo "")
	keep peer p_smtp
	P_DLV=$(kv p_smtp delivered)
	if [ -n "$P1" ]; then
		"$PY" - "$P0" "$P1" "$HZ" "${P_DLV:-0}" <<'EOF' | tee "$TMP/p_cpu.out"
import sys
c0, c1, hz, n = (int(x) for x in sys.argv[1:5])
ms = (c1 - c0) * 1000.0 / hz
print("   Postfix + Dovecot CPU %.2f s over the SMTP run (both process trees)" % (ms / 1000))
print("RESULT peer_cpu cpu_ms_per_msg=%.3f messages=%d cpu_s=%.2f" % (ms / n if n else 0, n, ms / 1000))
EOF
		keep peer p_cpu
	fi
	echo "== 6b. pop3_fetch against Dovecot :10110"
	run p_fetch "$T_FETCH" "$PY" "$KIT/pop3_fetch.py" --port 10110 --users "$NUSERS" \
		|| broke "pop3_fetch.py against the peers failed"
	keep peer p_fetch
	imap_steps peer p6 10143 "$DC_PID"
	echo "== p6e. 2000 IMAP sessions in IDLE against Dovecot (a process each: 10,000 would not fit)"
	run p_idle_imap 600 "$PY" "$KIT/idle_mem.py" --pidfile "$PEERS_DIR/dovecot/run/master.pid" \
		--port 10143 --conns 2000 || broke "idle_mem.py against Dovecot failed"
	keep peer p_idle_imap
	echo "== p6f. webmail's peer figure: user2's INBOX filled to $BIGBOX messages, IMAP SORT+FETCH 50"
	run p_webmail 1800 "$PY" "$HERE/webmail.py" imap --imap-port 10143 --imaps-port 10993 \
		--count "$BIGBOX" || broke "webmail.py against Dovecot failed"
	keep peer p_webmail
	stop_peers
fi

# ---- 8. disk ceiling ---------------------------------------------------
# Last: it creates and deletes tens of thousands of files, and ext4 then
# spends minutes scanning past the recently deleted inodes on every file
# creation -- measured at more than half of yubind's CPU when this step
# ran first.  Run at the end it cannot favour either server.
if [ "${BENCH_SKIP_FSYNC:-0}" = 1 ]; then
	echo "== 8. fsync_limit: skipped (BENCH_SKIP_FSYNC=1)"
else
	echo "== 8. fsync_limit on $TMP"
	run fsync "$T_FSYNC" "$PY" "$KIT/fsync_limit.py" --dir "$TMP" >/dev/null \
		|| broke "fsync_limit.py failed"
	grep -v '^RESULT ' "$TMP/fsync.out" | sed 's/^/   /'
	grep '^RESULT ' "$TMP/fsync.out"
fi

# ---- 9. outbound ---------------------------------------------------------
if [ "${BENCH_SKIP_OUTBOUND:-0}" = 1 ]; then
	echo "== 9. outbound: skipped (BENCH_SKIP_OUTBOUND=1)"
else
	OUT_MESSAGES=${BENCH_OUT_MESSAGES:-5000}
	OUT_SESSIONS=${BENCH_OUT_SESSIONS:-10}
	DEAD_MESSAGES=${BENCH_DEAD_MESSAGES:-100000}
	echo "== 9. outbound into Postfix's smtp-sink: $OUT_MESSAGES x 10 KiB, $OUT_SESSIONS" \
		"submitting sessions; $DEAD_MESSAGES to a dead destination"
	run outbound "$T_OUTBOUND" "$PY" "$HERE/outbound.py" --yubind "$YUBIND" --yubin "$YUBIN" \
		--dir "$TMP/outbound" --messages "$OUT_MESSAGES" --sessions "$OUT_SESSIONS" \
		--dead-messages "$DEAD_MESSAGES" || broke "outbound.py failed"
	grep '^RESULT ' "$TMP/outbound.out" | sed 's/^/outbound /' >>"$RESULTS"
fi

# ---- 7. comparison ------------------------------------------------------
echo "== 7. comparison ($MESSAGES x 10 KiB over $SESSIONS SMTP sessions; same machine, same run)"
"$PY" "$HERE/report.py" "$RESULTS"
"$PY" "$HERE/webmail.py" report "$RESULTS"
[ $BROKE = 0 ] || echo "bench: something broke (see BROKEN lines above)"
exit $BROKE
