#!/usr/bin/env python3
"""cpu.py -- CPU time and memory of server processes, read from /proc.

  cpu.py ticks PID...    print the CPU time used so far by the process trees
                         rooted at PID..., in clock ticks (one integer):
                         utime + stime + cutime + cstime of every process of
                         each tree (the root and every live descendant).
                         Time of children that have exited and been reaped
                         is in their parent's cutime/cstime, so the
                         difference of two readings is the CPU the trees
                         used in between (threads are included in their
                         process's utime/stime).
  cpu.py mem PID         print "rss_kib=N hwm_kib=N" (VmRSS, VmHWM).
  cpu.py hz              print the clock tick rate (getconf CLK_TCK).

Linux only; stdlib only.  Exits 1 when a root PID does not exist.
"""
import os
import sys


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    return s[s.rindex(b")") + 2:].split()


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = stat_fields(int(name))
        if f is None:
            continue
        ppid = int(f[1])  # fields after comm: state ppid ...
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root, kids):
    """Iterative walk (no recursion): root and all its live descendants."""
    out, todo, seen = [], [root], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def proc_ticks(pid):
    f = stat_fields(pid)
    if f is None:
        return 0
    # after comm: [0]=state ... utime=[11] stime=[12] cutime=[13] cstime=[14]
    return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


def ticks(roots):
    kids = children_map()
    total = 0
    pids = set()
    for r in roots:
        if stat_fields(r) is None:
            raise SystemExit("cpu.py: no process %d" % r)
        pids.update(tree(r, kids))
    for p in pids:
        total += proc_ticks(p)
    return total


def mem(pid):
    vals = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    vals[k] = int(v.split()[0])
    except OSError:
        raise SystemExit("cpu.py: no process %d" % pid)
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("ticks", "mem", "hz"):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "hz":
        print(os.sysconf("SC_CLK_TCK"))
        return 0
    try:
        pids = [int(a) for a in argv[2:]]
    except ValueError:
        sys.stderr.write("cpu.py: PIDs must be integers\n")
        return 2
    if not pids:
        sys.stderr.write("cpu.py: no PID given\n")
        return 2
    if argv[1] == "ticks":
        print(ticks(pids))
    else:
        rss, hwm = mem(pids[0])
        print("rss_kib=%d hwm_kib=%d" % (rss, hwm))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
