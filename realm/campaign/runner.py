"""Sweep campaigns: a JSON spec (:mod:`realm.campaign.spec`, the format and its validation) expanded
into points, run by up to N workers (local processes or Ray actors:
:mod:`realm.campaign.executor`), one
JSON line appended per finished point by the driver alone, so a killed campaign resumes where it
stopped.

A result line holds the point, the metrics (ppl/acc/nll for ``ppl``; agree/prefix/exact for
``gen``) and the number of corrupted elements; with an array, also the ABFT counts
(:class:`realm.abft.loop.AbftInjector`) and the tiles and MACs of the targeted GEMMs. A line
depends on its point alone, so every engine and worker count writes the same lines (in another
order); each point's wall time and worker go to the run log beside it (:func:`log_path`;
results files written before it hold them as ``seconds`` and ``pid``). The first line of a
results file records the settings, the clean baselines and the environment
(:func:`realm.campaign.worker.environment`); resuming with other settings or under another
environment is refused.
"""
import contextlib
import fcntl
import json
import os

from realm.campaign.spec import GLOBAL_DEFAULTS, SpecError, expand, point_key


def read_results(path, repair=False):
    """(header or None, {point key: record}) from a results file. A torn last line (a kill during
    a write) is ignored, and cut off the file with ``repair`` (only the writer may do that)."""
    header, done = None, {}
    if not os.path.exists(path):
        return header, done
    good = 0
    with open(path, "rb") as f:
        data = f.read()
    for line in data.splitlines(keepends=True):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break
        if not line.endswith(b"\n"):
            break
        good += len(line)
        if rec.get("kind") == "header":
            header = rec
        else:
            done[point_key(rec["point"])] = rec
    if repair and good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return header, done


def _append(f, rec):
    f.write(json.dumps(rec) + "\n")
    f.flush()
    os.fsync(f.fileno())


def log_path(out):
    """The run log beside a results file (``x.jsonl`` -> ``x.log.jsonl``): per point its wall
    time and worker, kept out of the results so that they do not depend on the run."""
    return os.path.splitext(out)[0] + ".log.jsonl"


def point_cost(p, settings):
    """A point's relative cost, to run the longest first: the tokens its pass evaluates, times
    1 + a share per targeted component (the whole GEMM with an array, whose loop tiles every
    targeted call; a tenth without). A DMR point evaluates nothing (a tenth of its tokens)."""
    if p["metric"] == "ppl":
        tokens = settings["windows"] * settings["length"]
    else:
        g = settings["gen"]
        tokens = g["prompts"] * (g["prompt_len"] + g["new_tokens"])
    if p.get("policy") == "dmr":
        return 0.1 * tokens
    return tokens * (1 + len(p["components"]) * (1.0 if "array" in p else 0.1))


@contextlib.contextmanager
def exclusive(out):
    """Hold ``out``'s lock (an exclusive ``flock`` on ``out.lock``) for the block: a second
    campaign writing the same results file would interleave and repair away its lines."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpecError(f"another campaign is writing {out} (its lock {out}.lock is held); "
                            "wait for it or use another output file") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run(spec, out, workers=1, threads=None, progress=True, compile=True, limit=None,
        engine=None, device="cpu"):
    """Run every point of ``spec`` not yet in ``out`` (JSONL) on ``engine`` (a
    :class:`realm.campaign.executor.Engine`; default local) with ``workers`` workers, longest first.
    Returns the number run; raises :class:`realm.campaign.executor.PointsFailed` after the others
    ran if some raised. Experiments with an ``adaptive`` rule then get more seeds, round by round
    (:mod:`realm.campaign.adaptive`), and their verdicts go to ``x.verdicts.csv`` beside ``out``.
    ``limit`` stops after that many points, with no adaptive rounds (for tests). The engine is
    joined before any model loads (a bad address is said first); the results do not depend on
    it. The model runs on ``device`` (``cpu`` or ``cuda[:N]``), which is part of the
    environment: a resume on another device is refused."""
    with exclusive(out):
        return _run(spec, out, workers, threads, progress, compile, limit, engine, device)


def _run(spec, out, workers, threads, progress, compile, limit, engine, device):
    from realm.campaign import adaptive, executor, worker

    settings, points = expand(spec)
    engine = engine or executor.Engine()
    engine.connect()
    header, done = read_results(out, repair=True)
    old = {**settings, **GLOBAL_DEFAULTS, **(header or {}).get("settings", {})}
    if header is not None and old != settings:  # keys added since the file was made: defaults
        diff = next(k for k in settings if old.get(k) != settings[k])
        raise SpecError(f"{out} was made with other settings ({diff}: "
                        f"{header['settings'].get(diff)!r} there, {settings[diff]!r} here); "
                        "use another output file")
    here = worker.environment(device)
    # an environment recorded before it named the device was a CPU one
    there = {"device": "cpu", **header["env"]} if header is not None and "env" in header else None
    if there is not None and there != here:
        diff = next(k for k in here if there.get(k) != here[k])
        raise SpecError(f"{out} was made under another environment ({diff}: "
                        f"{there.get(diff)!r} there, {here[diff]!r} here): its points "
                        "would not be comparable with new ones; use another output file")
    todo = [p for p in points if point_key(p) not in done]
    if limit is not None:
        todo = todo[:limit]
    rule_of = adaptive.rules(spec) if limit is None else {}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    first = len(todo) or (workers if rule_of else 1)  # the workers of the first round
    threads = threads or (2 if min(workers, first) <= 1 else 1)  # the same on every engine
    ran, initial = 0, len(points) - len(todo)
    with open(out, "a") as f:
        if header is None:
            header = {"kind": "header", "settings": settings,
                      "baseline": worker.baselines(settings, device), "env": here}
            _append(f, header)
        base = header["baseline"]["w8a8"]["ppl"]
        while True:
            if not todo and rule_of:  # adaptive seeds: the open cells' next round
                _, done = read_results(out)
                todo = [p for p in adaptive.next_points(points, done, base, rule_of)
                        if point_key(p) not in done]
                initial = 0
            if not todo:
                break
            job = executor.Job(worker.init, worker.run_point,
                               (settings, threads, compile, device), cpus=threads,
                               gpus=0 if str(device) == "cpu" else 1)
            ran += executor.run(job, todo, on_result=lambda p, rec: _append(f, rec),
                                engine=engine, workers=max(1, min(workers, len(todo))),
                                cost=lambda p: point_cost(p, settings), key=point_key,
                                log=log_path(out), progress=progress, initial=initial)
            todo = []
            if not rule_of:
                break
    if rule_of:
        _, done = read_results(out)
        adaptive.write_verdicts(adaptive.verdict_rows(points, done, base, rule_of),
                                adaptive.verdicts_path(out))
    return ran
