"""soak.py [SECONDS] - mixed load against an ASan yubind: SMTP senders (some abort mid-DATA,
some pipeline, some big), POP3 readers that RETR and DELE, then SIGTERM.
Checks: no sanitizer report, exit 0, every 250'd message either retrieved
or still in a mailbox."""
import sys, os, random, socket, smtplib, poplib, threading, time, ssl
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto"))
os.environ.setdefault("YUBIN_BUILD", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build-asan"))
import yubintest as yt

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 60
cert = yt.Cert()
tmpl = yt.Template(cert)
y = yt.Yubind(tmpl, cert, {"message_size_limit": "4M", "smtp_data_memory_max": "8M"})
y.start()
users = list(yt.USERS)
accepted, got = set(), set()
lock = threading.Lock()
stop = time.monotonic() + DUR
errors = []

def sender(tid):
    rng = random.Random(tid)
    n = 0
    while time.monotonic() < stop:
        n += 1
        key = f"soak-{tid}-{n}"
        size = rng.choice([100, 5000, 50000, 300000, 2500000])
        body = ("x" * 70 + "\n") * (size // 71)
        data = yt.make_message(subject=key, body=body)
        rcpts = rng.sample(users, rng.randint(1, 3))
        mode = rng.random()
        try:
            if mode < 0.1:      # abort mid-DATA
                c = y.smtp()
                c.mail_tx("s@example.net", rcpts[:1])
                c.cmd("DATA")
                c.send(data[: len(data) // 2])
                c.close()
                continue
            with smtplib.SMTP("127.0.0.1", y.smtp_port, timeout=60) as s:
                s.ehlo("soak.example")
                if mode < 0.3:
                    s.starttls(context=ctx)
                    s.ehlo("soak.example")
                s.sendmail("s@example.net", rcpts, data)
            with lock:
                for r in rcpts:
                    accepted.add((r, key))
        except smtplib.SMTPResponseException as e:
            if e.smtp_code != 452:
                errors.append(f"{key}: {e}")
        except Exception as e:
            errors.append(f"{key}: {type(e).__name__}: {e}")

def reader(tid):
    rng = random.Random(100 + tid)
    while time.monotonic() < stop:
        u = rng.choice(users)
        try:
            p = poplib.POP3("127.0.0.1", y.pop3_port, timeout=60)
            p.user(u); p.pass_(yt.USERS[u])
            cnt, _ = p.stat()
            for i in range(1, min(cnt, 20) + 1):
                _, lines, _ = p.retr(i)
                raw = b"\r\n".join(lines)
                import re
                m = re.search(rb"Subject: (soak-\S+)", raw)
                if m and rng.random() < 0.7:
                    p.dele(i)
                    with lock:
                        got.add((u, m.group(1).decode()))
            if rng.random() < 0.2:
                p.sock.close()   # drop without QUIT: deletes must not apply
                with lock:
                    pass
                continue
            p.quit()
        except poplib.error_proto as e:
            if b"IN-USE" not in str(e).encode():
                errors.append(f"pop3 {u}: {e}")
        except Exception as e:
            errors.append(f"pop3 {u}: {type(e).__name__}: {e}")

ctx = ssl.create_default_context(cafile=cert.path if hasattr(cert, "path") else None)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ts = [threading.Thread(target=sender, args=(i,)) for i in range(8)] + \
     [threading.Thread(target=reader, args=(i,)) for i in range(3)]
for t in ts: t.start()
for t in ts: t.join()
print("accepted", len(accepted), "errors", len(errors), errors[:5])
import re
remaining = set()
for u in users:
    for m in y.fetch(u):
        k = re.search(rb"Subject: (soak-\S+)", m)
        if k:
            remaining.add((u, k.group(1).decode()))
missing = accepted - got - remaining
print("retrieved+deleted", len(got & accepted), "still stored", len(remaining & accepted),
      "MISSING", len(missing), sorted(missing)[:5])
y.stop()   # SIGTERM; raises on sanitizer report or bad exit
print("stopped cleanly; log lines:", len(y.log().splitlines()))
print("warnings/errors in log:", [l for l in y.log().splitlines() if ": error: " in l or ": warning: " in l][:10])
y.cleanup(); tmpl.cleanup()
