"""Progress from frame threads: every frame counted once, counts never repeated."""

from __future__ import annotations

import sys
import threading

from actanywhere.progress import OTHER_STAGES, WORK_STAGES, StageClock


def test_stage_clock_counts_every_frame_once_from_many_threads():
    events = []
    lock = threading.Lock()

    def report(ev):
        with lock:
            events.append(ev)

    clock = StageClock(report, "frames", 8 * 2000)
    start = threading.Barrier(8)

    def worker():
        start.wait()
        for _ in range(2000):
            clock.advance()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show every run
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    done = sorted(ev.done for ev in events[1:])
    assert events[0].done == 0 and clock.done == 16000
    assert done == list(range(1, 16001))  # none lost, none reported twice
    assert events[-1].eta_s is not None


def test_the_stages_are_one_list_the_worker_shares():
    from actanywhere.worker.openapi import OPENAPI

    assert "matte" in WORK_STAGES and "write" not in WORK_STAGES
    enum = OPENAPI["components"]["schemas"]["Event"]["properties"]["stage"]["enum"]
    assert enum == [*WORK_STAGES, *OTHER_STAGES, "end"]
