#!/usr/bin/env python3
"""report.py -- the final comparison table of bench/run.sh.

  report.py RESULTS_FILE

RESULTS_FILE has lines "LABEL RESULT NAME key=value ..." (LABEL = yubin or
peer), as collected by run.sh.  Prints one row per label: accepted/s,
delivered/s, CPU ms per message, POP3 msgs/s, and the ratio of delivered/s
yubin : peer.  Missing figures print as "-".
"""
import sys

LABELS = ("yubin", "peer")
NAMES = {"yubin": "Yubin", "peer": "Postfix+Dovecot"}


def load(path):
    res = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 3 or w[1] != "RESULT":
                continue
            kv = dict(x.split("=", 1) for x in w[3:] if "=" in x)
            res.setdefault(w[0], {})[w[2]] = kv
    return res


def num(res, label, name, key):
    try:
        return float(res[label][name][key])
    except (KeyError, ValueError):
        return None


def fmt(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    res = load(argv[1])
    cols = ("accepted/s", "delivered/s", "cpu ms/msg", "pop3 msgs/s")
    rows = []
    for lb in LABELS:
        if lb not in res:
            continue
        rows.append((NAMES[lb],
                     fmt(num(res, lb, "smtp_accept", "accepted_per_s")),
                     fmt(num(res, lb, "smtp_accept", "delivered_per_s")),
                     fmt(num(res, lb, lb + "_cpu", "cpu_ms_per_msg"), 2),
                     fmt(num(res, lb, "pop3_fetch", "msgs_per_s"))))
    w0 = max([len("server")] + [len(r[0]) for r in rows])
    print("%-*s  %s" % (w0, "server", "  ".join("%12s" % c for c in cols)))
    for r in rows:
        print("%-*s  %s" % (w0, r[0], "  ".join("%12s" % c for c in r[1:])))
    y = num(res, "yubin", "smtp_accept", "delivered_per_s")
    p = num(res, "peer", "smtp_accept", "delivered_per_s")
    if y and p:
        print("delivered/s yubin : peer = %.2f : 1" % (y / p))
    else:
        print("delivered/s yubin : peer = - (a side is missing)")
    print()
    print("IMAP (same machine, same run)")
    icols = (("SELECT ms", "bigbox", "select_ms_median", 1),
             ("FETCH 1:* ms", "bigbox", "fetch_ms_median", 1),
             ("SEARCH BODY ms", "bigbox", "search_ms_median", 1),
             ("QRESYNC ms", "qresync", "ms_median", 1),
             ("cmds/s login", "imap_load_login", "cmds_per_s", 0),
             ("cmds/s nologin", "imap_load_nologin", "cmds_per_s", 0),
             ("KiB/IDLE plain", "idle_mem", "pss_per_conn_kib", 1),
             ("KiB/IDLE TLS", "idle_imap_tls", "kib_per_conn", 1))
    print("%-*s  %s" % (w0, "server", "  ".join("%15s" % c[0] for c in icols)))
    for lb in LABELS:
        if lb not in res:
            continue
        print("%-*s  %s" % (w0, NAMES[lb], "  ".join(
            "%15s" % fmt(num(res, lb, c[1], c[2]), c[3]) for c in icols)))
    for name in ("imap_load_login", "imap_load_nologin"):
        y = num(res, "yubin", name, "cmds_per_s")
        p = num(res, "peer", name, "cmds_per_s")
        if y and p:
            print("%s cmds/s yubin : peer = %.2f : 1" % (name, y / p))
    yc = num(res, "yubin", "yubin_cpu", "cpu_ms_per_msg")
    pc = num(res, "peer", "peer_cpu", "cpu_ms_per_msg")
    if yc and pc:
        print("cpu ms/msg  yubin : peer = %.2f : 1" % (yc / pc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
