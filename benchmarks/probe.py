"""How much work a core does when it runs alone, and when every core is busy.

On a virtual machine two busy vCPUs may get less done per CPU-second than one
(their host threads share a physical core, or other guests load the host),
and that changes from minute to minute.  The pipeline keeps every core busy
while the single-process reference keeps one busy, so such a slowdown moves
the ratio without any change in the code.  :func:`core_speed` measures it with
a fixed piece of pure-Python string work (the kind the feature hashing does)
run once alone and then in one process per core at the same time; the
benchmark records it before and after each run.
"""

from __future__ import annotations

import multiprocessing
import os
import time

#: A review-like sentence whose words the probe cuts and counts.
_TEXT = ("ripe black cherry and plum flavors lead to a firm finish with "
         "hints of oak, vanilla and dusty tannins ") * 3


def _work(rounds: int) -> float:
    """CPU seconds of a fixed amount of string and dict work."""
    started = time.process_time()
    counts: dict[str, int] = {}
    for i in range(rounds):
        for word in _TEXT.split():
            key = f"{word[:4]}{i % 64}"
            counts[key] = counts.get(key, 0) + 1
    return time.process_time() - started


def core_speed(processes: int | None = None, rounds: int = 60_000) -> dict:
    """CPU seconds of the same work alone and with ``processes`` copies at once.

    Parameters
    ----------
    processes : int, optional
        Copies run at the same time; default one per core, to load the whole machine.
    rounds : int, default 60,000
        Size of the work: about 0.75 s of one core on this project's 2-core EPYC VM,
        where three probes in a row on the idle machine agreed within 2%, and probes
        taken just before or after a benchmark run read 0.9-1.1.

    Returns
    -------
    dict
        ``alone_cpu_s``, ``together_cpu_s`` (the mean over the copies) and
        ``slowdown``: ``together / alone``, 1.0 when busy cores keep their pace.
    """
    processes = processes or os.cpu_count() or 1
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        pool.map(_work, [rounds // 10] * processes)  # start-up and first-touch costs
        alone = pool.apply(_work, (rounds,))
        together = pool.map(_work, [rounds] * processes)
    mean = sum(together) / len(together)
    return {"alone_cpu_s": round(alone, 3), "together_cpu_s": round(mean, 3),
            "slowdown": round(mean / alone, 3) if alone > 0 else None}
