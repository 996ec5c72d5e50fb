#!/usr/bin/python3
"""How late a timer wakes a thread on this machine: the control for the batching p99 bound.

A lone batched request with max_queue_delay D waits for the instance thread's timed wait
(std::condition_variable::wait_until: a FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC
deadline; the instance threads run with 1 µs of timer slack). However the server is built, the
request's latency holds D plus the time the kernel and hypervisor take to run the sleeping
thread once the deadline passes. This measures that time the same way: a futex wait until D
ahead (timer slack 1 µs), lateness = wake-up time - deadline; then a short busy pause (as
between two requests) and again, for --seconds. Run it pinned where the server runs.
--primitive timerfd waits in epoll_wait on a timerfd instead (what an Asio I/O thread does).

Usage: timer_lateness.py [--delay-us 500] [--gap-us 150] [--seconds 6] [--primitive futex]
Prints JSON: {"delay_us", "primitive", "waits", "p50_us", "p90_us", "p99_us", "max_us"}.
"""
import argparse
import ctypes
import json
import os
import select
import struct
import time

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
SYS_FUTEX = 202  # x86-64
FUTEX_WAIT_BITSET_PRIVATE = 9 | 128
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
PR_SET_TIMERSLACK = 29


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay-us", type=int, default=500)
    ap.add_argument("--gap-us", type=int, default=150)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--primitive", choices=("futex", "timerfd"), default="futex")
    a = ap.parse_args()

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    wait = None
    if a.primitive == "futex":
        libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1000), 0, 0, 0)
        word = ctypes.c_int(0)
        deadline = Timespec()

        def wait(due):
            deadline.tv_sec, deadline.tv_nsec = divmod(due, 1_000_000_000)
            # Returns ETIMEDOUT at the deadline (EINTR/EAGAIN: wait again).
            while time.monotonic_ns() < due:
                libc.syscall(ctypes.c_long(SYS_FUTEX), ctypes.byref(word),
                             ctypes.c_int(FUTEX_WAIT_BITSET_PRIVATE), ctypes.c_int(0),
                             ctypes.byref(deadline), None, ctypes.c_uint(FUTEX_BITSET_MATCH_ANY))
    else:
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Itimerspec),
                                         ctypes.c_void_p]
        fd = libc.timerfd_create(CLOCK_MONOTONIC, 0)
        if fd < 0:
            raise SystemExit(f"timerfd_create: {os.strerror(ctypes.get_errno())}")
        ep = select.epoll()
        ep.register(fd, select.EPOLLIN)
        spec = Itimerspec()

        def wait(due):
            spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(due, 1_000_000_000)
            if libc.timerfd_settime(fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
                raise SystemExit(f"timerfd_settime: {os.strerror(ctypes.get_errno())}")
            ep.poll(-1)
            struct.unpack("Q", os.read(fd, 8))
    late = []
    end = time.monotonic_ns() + int(a.seconds * 1e9)
    while time.monotonic_ns() < end:
        due = time.monotonic_ns() + a.delay_us * 1000
        wait(due)
        late.append((time.monotonic_ns() - due) / 1000.0)
        # The pause between two requests, spent busy as a server would be (not asleep).
        pause_end = time.monotonic_ns() + a.gap_us * 1000
        while time.monotonic_ns() < pause_end:
            pass
    late.sort()
    print(json.dumps({"delay_us": a.delay_us, "primitive": a.primitive, "waits": len(late),
                      "p50_us": percentile(late, 0.50), "p90_us": percentile(late, 0.90),
                      "p99_us": percentile(late, 0.99), "max_us": late[-1]}))


if __name__ == "__main__":
    main()
