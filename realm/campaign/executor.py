"""One executor seam for every campaign: a :class:`Job` run over a list of points on this
machine's processes (``local``, the default) or on a Ray cluster (``ray``,
:mod:`realm.campaign.executor_ray`, imported only then).

The contract, the same on both engines:

* Each worker calls ``job.init(*job.args)`` once (load the model, build the simulation), then
  ``job.run(point)`` for as many points as it is given; ``run`` returns the point's record.
* Points are handed out longest first by ``cost(point)`` (stable for equal costs); results come
  back as they finish, in any order.
* The driver alone sees results: ``on_result(point, record)`` is called in the calling process
  once per point key (a result arriving twice, e.g. from a retried task, is dropped), so the
  caller alone writes the results file.
* A record must depend on the point only (every random draw keyed by the point and its seed,
  never by the worker or the order): then every engine and worker count gives the same records.
  Wall time and worker identity are not part of it; they go to the run log ``log`` (JSON lines:
  ``start``, ``ready``, one ``point`` or ``failed`` per point, ``end``).
* A point that raises is printed on stderr as it happens and skipped; the others run. At the
  end :class:`PointsFailed` says how many failed and the first error.
* Ray only: a lost worker (its actor or its process killed, its node gone) is restarted by Ray
  and its point retried there (``max_restarts``, ``max_task_retries``); see
  :mod:`realm.campaign.executor_ray`.

A golden-model or RTL fault campaign is a few lines on top::

    job = Job(build_model, run_trial, args=(config.to_json(),))
    run(job, trials, workers=4, engine=Engine("ray", "auto"), on_result=write)
"""
import importlib.util
import json
import os
import socket
import sys
import time

#: The engines :class:`Engine` knows.
ENGINES = ("local", "ray")


class EngineError(ValueError):
    """An engine that cannot be used (Ray missing, a bad or unreachable address); one line."""


class PointsFailed(RuntimeError):
    """Some points raised; the others ran and were handed to ``on_result``."""

    def __init__(self, failed, total, first):
        self.failed, self.total, self.first = failed, total, first
        super().__init__(f"{failed} of {total} points failed (left out of the results: rerun "
                         f"to retry them); the first: {first}")


class Job:
    """What each worker runs: ``init(*args)`` once, then ``run(point)`` per point. ``init`` and
    ``run`` must be module-level functions (they are pickled by reference); ``args`` must
    pickle. ``cpus`` is what one worker uses (its torch threads): a Ray actor reserves that many
    CPUs; ``gpus`` the GPUs it uses (0 or 1): a Ray actor reserves them (Ray hides the GPUs
    from an actor that reserves none); local workers share the machine's."""

    def __init__(self, init, run, args=(), cpus=1, gpus=0):
        self.init, self.run, self.args, self.cpus = init, run, tuple(args), cpus
        self.gpus = gpus


class Engine:
    """Where the points run. ``local``: in this process for one worker, else in a ``spawn``
    multiprocessing pool. ``ray``: on Ray actors; ``address`` is ``None`` (start a local Ray
    for this run), ``"auto"`` (the cluster this machine belongs to, or ``RAY_ADDRESS``) or
    ``"HOST:PORT"`` (the head's GCS address). Raises :class:`EngineError` for an unknown engine,
    a malformed address, an address without Ray, or Ray not installed."""

    def __init__(self, name="local", address=None):
        if name not in ENGINES:
            raise EngineError(f"engine must be one of {', '.join(ENGINES)}, not {name!r}")
        if address is not None and name != "ray":
            raise EngineError("--address goes with --engine ray")
        self.name, self.address = name, None if address is None else parse_address(address)
        if name == "ray" and importlib.util.find_spec("ray") is None:
            raise EngineError("--engine ray needs Ray, an optional extra: pip install "
                              "'realm-sa[ray]'")

    def connect(self):
        """Join (or start) the cluster now, before any model is loaded; idempotent. Raises
        :class:`EngineError` with one line when the address cannot be reached."""
        if self.name == "ray":
            from realm.campaign import executor_ray

            try:
                executor_ray.connect(self.address)
            except executor_ray.ClusterError as e:
                raise EngineError(str(e)) from None

    def execute(self, job, points, workers, log):
        """Yield ``(point, outcome)`` as points finish (outcome: :func:`host_run`'s)."""
        if self.name == "ray":
            from realm.campaign import executor_ray

            try:
                yield from executor_ray.execute(job, points, workers, log, host_init, host_run)
            except executor_ray.ClusterError as e:
                raise PointsFailed(len(points), len(points), str(e)) from None
        else:
            yield from _local(job, points, workers, log)

    def __repr__(self):
        return self.name + (f"@{self.address}" if self.address else "")


def parse_address(text):
    """``"auto"`` or ``"HOST:PORT"`` (port 1 to 65535), checked; :class:`EngineError` if not."""
    if text == "auto":
        return text
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or " " in host:
        raise EngineError(f"--address must be auto or HOST:PORT, not {text!r}")
    return text


def run(job, points, *, on_result, engine=None, workers=1, cost=None, key=None, log=None,
        progress=False, initial=0):
    """Run ``job`` over ``points`` on ``engine`` (default local) with ``workers`` workers;
    ``on_result(point, record)`` once per key (``key(point)``, default its sorted JSON) as
    results arrive. ``log``: the run log's path (appended). ``progress``: a tqdm bar, starting
    at ``initial`` points already done. Returns the number of points run; raises
    :class:`PointsFailed` after the others ran if any point raised."""
    engine = engine or Engine()
    key = key or (lambda p: json.dumps(p, sort_keys=True))
    order = sorted(points, key=cost, reverse=True) if cost else list(points)
    if not order:
        return 0
    workers = max(1, min(workers, len(order)))
    seen, failed = set(), []
    from tqdm import tqdm

    bar = tqdm(total=initial + len(order), initial=initial, disable=not progress, unit="pt",
               smoothing=0.05, dynamic_ncols=True)
    with _Log(log) as rl:
        rl.event("start", engine=engine.name, address=engine.address, workers=workers,
                 points=len(order))
        try:
            engine.connect()
            for point, out in engine.execute(job, order, workers, rl):
                k = key(point)
                if not out["ok"]:
                    failed.append(f"point {k}: {out['error']}")
                    bar.write(f"failed: {failed[-1]}", file=sys.stderr)
                    rl.event("failed", key=k, worker=out["worker"], seconds=out["seconds"],
                             error=out["error"])
                elif k not in seen:  # a retried point whose result came back twice: once only
                    seen.add(k)
                    on_result(point, out["record"])
                    rl.event("point", key=k, worker=out["worker"], seconds=out["seconds"])
                    bar.update(1)
        finally:
            bar.close()
            rl.event("end", run=len(seen), failed=len(failed))
    if failed:
        raise PointsFailed(len(failed), len(order), failed[0])
    return len(seen)


class _Log:
    """The run log: one JSON line per event with its time; nothing when ``path`` is None."""

    def __init__(self, path):
        self.path, self.f = path, None

    def __enter__(self):
        if self.path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.f = open(self.path, "a")
        return self

    def event(self, kind, **fields):
        if self.f is not None:
            self.f.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields})
                         + "\n")
            self.f.flush()

    def __exit__(self, *exc):
        if self.f is not None:
            self.f.close()


# The worker side: the same two functions in a pool process, a Ray actor or this process.
_HOST = {}


def host_init(job, cwd=None):
    """Set up this worker: move to the driver's working directory ``cwd`` when it exists here
    (relative paths in a spec mean the same), then ``job.init(*job.args)``."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    job.init(*job.args)
    _HOST["job"] = job


def host_run(point):
    """Run one point in this worker: ``{"ok", "record" or "error" (one line), "seconds",
    "worker" (host:pid)}``. An exception of the point is an outcome, not a crash."""
    t = time.perf_counter()
    try:
        out = {"ok": True, "record": _HOST["job"].run(point)}
    except Exception as e:
        out = {"ok": False, "error": " ".join(f"{type(e).__name__}: {e}".split())}
    return {**out, "seconds": round(time.perf_counter() - t, 3),
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _pair(point):
    return point, host_run(point)


def _local(job, points, workers, log):
    if workers == 1:
        host_init(job)
        log.event("ready")
        for p in points:
            yield p, host_run(p)
        return
    import multiprocessing as mp

    pool = mp.get_context("spawn").Pool(workers, host_init, (job, os.getcwd()))
    try:
        log.event("ready")  # the pool sets its workers up lazily, in their first points
        yield from pool.imap_unordered(_pair, points)
    finally:
        pool.terminate()
