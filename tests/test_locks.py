"""The run lock (appendix *The experiment runner*): processes racing for one lock file find
exactly one owner, on fresh lock files and on stale ones left by processes that are gone."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from ropelib.files import exclusive_lock

WORKERS = 4
TRIALS = 120  # half on fresh lock files, half on stale ones


def _race(worker: int, paths: list[str], start, hold, results) -> None:
    for trial, path in enumerate(paths):
        start.wait()  # everyone tries at once
        with exclusive_lock(path) as mine:
            results.put((trial, worker, mine))
            hold.wait()  # the owner holds the lock until everyone has tried


def test_racing_processes_find_exactly_one_owner(tmp_path):
    paths = []
    for trial in range(TRIALS):
        path = tmp_path / f"run-{trial}.lock"
        if trial % 2:  # stale: a file left by a holder that died, with its (dead) pid in it
            path.write_text("999999999\n" if trial % 4 == 1 else "garbage")
        paths.append(str(path))
    context = multiprocessing.get_context("fork")
    start, hold = context.Barrier(WORKERS), context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(target=_race, args=(w, paths, start, hold, results))
        for w in range(WORKERS)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=20) for _ in range(WORKERS * TRIALS)]
    for process in workers:
        process.join(timeout=20)
        assert process.exitcode == 0
    owners: dict[int, list[int]] = {trial: [] for trial in range(TRIALS)}
    for trial, worker, mine in outcomes:
        if mine:
            owners[trial].append(worker)
    assert all(len(found) == 1 for found in owners.values()), {
        trial: found for trial, found in owners.items() if len(found) != 1
    }
    assert all(Path(path).exists() for path in paths)  # lock files are never deleted
    assert len(os.listdir(tmp_path)) == TRIALS  # and no other file appears
