"""Crash safety: every message that got "250 queued" survives kill -9.

Several rounds of: N threads send with smtplib in a loop, recording each
message that got its 250; after a random number of 250s the daemon is killed
with SIGKILL and restarted.  At the end every recorded message must be
retrievable over POP3, byte-identical, and every restart must have opened
the store cleanly.  YUBIN_CRASH_SEED reproduces a run."""

import os
import random
import re
import smtplib
import threading

import yubintest as yt
from yubintest import make_message, stored_data

SENDER = "sender@example.net"
RCPTS = ["demo@example.test", "alice@example.test", "bob@example.org"]
THREADS = 3
ROUNDS = 5


def subject_key(data):
    m = re.search(rb"^Subject: (crash \S+)\r$", data, re.M)
    assert m, data[:300]
    return m.group(1).decode()


def test_kill9_rounds(yubind):
    seed = int(os.environ.get("YUBIN_CRASH_SEED", random.randrange(1 << 30)))
    print(f"YUBIN_CRASH_SEED={seed}")
    rng = random.Random(seed)
    accepted = {}              # key -> (recipients, data)
    lock = threading.Lock()

    for rnd in range(ROUNDS):
        target = rng.randint(5, 60)
        stop = threading.Event()
        reached = threading.Event()
        errors = []
        seeds = [rng.randrange(1 << 30) for _ in range(THREADS)]

        def worker(tid, port=yubind.smtp_port, rnd=rnd, target=target, stop=stop,
                   reached=reached, errors=errors, seeds=seeds):
            wrng = random.Random(seeds[tid])
            n = 0
            while not stop.is_set():
                try:
                    s = smtplib.SMTP("127.0.0.1", port, timeout=yt.IO_TIMEOUT)
                except OSError:
                    continue
                try:
                    s.ehlo("crash.example.net")
                    while not stop.is_set():
                        key = f"crash r{rnd}t{tid}n{n}"
                        n += 1
                        rcpts = wrng.sample(RCPTS, wrng.randint(1, len(RCPTS)))
                        body = "".join(f"{key} line {i} {wrng.random()}\n"
                                       for i in range(wrng.randint(1, 200)))
                        data = make_message(subject=key, body=body, to=", ".join(rcpts))
                        refused = s.sendmail(SENDER, rcpts, data)
                        if refused:
                            errors.append(f"{key}: refused {refused}")
                        with lock:
                            accepted[key] = (rcpts, data)
                            done = sum(1 for k in accepted if k.startswith(f"crash r{rnd}t"))
                        if done >= target:
                            reached.set()
                except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
                    if not stop.is_set():       # a real refusal, not the kill
                        errors.append(f"{type(e).__name__}: {e}")
                except (smtplib.SMTPException, OSError):
                    pass                        # the daemon was killed under us
                finally:
                    try:
                        s.close()
                    except OSError:
                        pass

        threads = [threading.Thread(target=worker, args=(t,), daemon=True)
                   for t in range(THREADS)]
        for t in threads:
            t.start()
        ok = reached.wait(timeout=90)
        yubind.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert ok, f"round {rnd}: only reached {len(accepted)} accepted messages"
        assert not errors, errors[:5]
        mark = yubind.log_mark()
        yubind.start()
        after = yubind.log(mark)
        assert re.search(r"ready pid=", after)
        bad = [l for l in after.splitlines()
               if re.search(r"\]: (error|warning): |AddressSanitizer|runtime error", l)]
        assert not bad, "restart after kill -9 logged errors:\n" + "\n".join(bad)

    want = {}
    for key, (rcpts, data) in accepted.items():
        for r in rcpts:
            want.setdefault(r, {})[key] = data
    for r in RCPTS:
        got = {}
        for m in yubind.fetch(r):
            d = stored_data(m)
            got[subject_key(d)] = d
        missing = sorted(set(want.get(r, {})) - set(got))
        assert not missing, f"{r}: {len(missing)} accepted messages lost: {missing[:10]}"
        for key, data in want.get(r, {}).items():
            assert got[key] == data, f"{r}: {key} differs"
