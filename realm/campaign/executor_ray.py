"""The Ray engine of :mod:`realm.campaign.executor` (imported only with ``--engine ray``).

One actor per worker (:class:`Host`) runs the job's ``init`` once in its constructor, then
serves points one at a time; the driver hands the next point (longest first) to whichever
actor finishes, and takes results as they come (``ray.wait``). Actors are spread over the
cluster's nodes and reserve ``job.cpus`` CPUs each. Lost workers are Ray's business: an actor
whose process dies (killed, out of memory, its node gone) is restarted up to
:data:`MAX_RESTARTS` times (its ``init`` runs again, possibly on another node) and the point it
was running is retried up to :data:`MAX_TASK_RETRIES` times. A point lost beyond that is a
failed point; an actor dead for good leaves the pool. Ray's usage statistics are off unless
``RAY_USAGE_STATS_ENABLED`` says otherwise.

This module does not import :mod:`realm.campaign.executor` (which imports it): the worker-side
functions
come as arguments, and :class:`ClusterError` becomes that module's ``EngineError`` or
``PointsFailed``.
"""
import collections
import logging
import os
import socket
import sys

#: Restarts of one worker's actor after its process died.
MAX_RESTARTS = 3
#: Retries of one point whose worker died while running it.
MAX_TASK_RETRIES = 2
#: Where a Ray started for one run lives: the loopback, but not 127.0.0.1, which Ray replaces
#: with the machine's outward address.
LOOPBACK = "127.0.0.2"


class ClusterError(RuntimeError):
    """The cluster cannot be joined, or no worker could be set up on it; one line."""


def connect(address):
    """Join the cluster at ``address`` (``"auto"``, ``"HOST:PORT"``) or, for ``None``, start a
    local Ray on :data:`LOOPBACK` (with its dashboard) that ends with this process. Nothing
    happens when this process is already connected."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address not in (None, "auto"):
        host, _, port = address.rpartition(":")
        try:  # say an unreachable head at once, not after Ray's own retries
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except OSError as e:
            raise ClusterError(f"--address {address}: no Ray cluster answers there "
                               f"({e.strerror or e})") from None
    import ray

    if ray.is_initialized():
        return
    try:
        own = {"_node_ip_address": LOOPBACK} if address is None and sys.platform == "linux" \
            else {}
        ctx = ray.init(address=address or "local", logging_level=logging.WARNING, **own)
    except (ConnectionError, RuntimeError, ValueError) as e:
        if address == "auto":
            raise ClusterError("--address auto: no running Ray cluster found on this machine "
                               "(start one with `ray start --head`, or set RAY_ADDRESS)") from None
        raise ClusterError(f"--address {address}: cannot join the Ray cluster: "
                           f"{_one_line(e)} (a cluster with token authentication needs "
                           "RAY_AUTH_MODE=token and its token here)") from None
    res = ray.cluster_resources()
    where = "started a local Ray" if address is None else f"joined the Ray cluster at {address}"
    url = getattr(ctx, "dashboard_url", None)
    print(f"ray: {where} ({res.get('CPU', 0):g} CPUs on {len(ray.nodes())} nodes)"
          + (f"; dashboard http://{url}" if url else ""), file=sys.stderr)


class Host:
    """One worker: ``setup(job, cwd)`` once, then ``serve(point)`` per point
    (:func:`realm.campaign.executor.host_init` and :func:`~realm.campaign.executor.host_run`)."""

    def __init__(self, job, cwd, setup, serve):
        setup(job, cwd)
        self.serve = serve

    def ready(self):
        import ray
        return {"worker": f"{socket.gethostname()}:{os.getpid()}",
                "node": ray.get_runtime_context().get_node_id()[:12]}

    def run(self, point):
        return self.serve(point)


def execute(job, points, workers, log, setup, serve):
    """Yield ``(point, outcome)`` as the actors finish them (see :mod:`realm.campaign.executor`);
    :class:`ClusterError` if no worker could be set up."""
    import ray

    fit = int(ray.cluster_resources().get("CPU", 0) // job.cpus) if job.cpus else workers
    if fit < workers:
        print(f"ray: the cluster has room for {fit} workers of {job.cpus} CPUs, not {workers}",
              file=sys.stderr)
        workers = max(1, fit)
    cls = ray.remote(Host).options(num_cpus=job.cpus, num_gpus=job.gpus,
                                   max_restarts=MAX_RESTARTS,
                                   max_task_retries=MAX_TASK_RETRIES, scheduling_strategy="SPREAD")
    actors = [cls.remote(job, os.getcwd(), setup, serve) for _ in range(workers)]
    try:
        idle, names, first = [], [], None
        for a in actors:
            try:
                names.append(ray.get(a.ready.remote()))
                idle.append(a)
            except ray.exceptions.RayError as e:
                first = first or _one_line(e)
                print(f"ray: a worker could not be set up: {first}", file=sys.stderr)
        if not idle:
            raise ClusterError(f"no worker could be set up: {first}")
        log.event("ready", workers=names)
        yield from _serve(ray, idle, collections.deque(points))
    finally:
        for a in actors:
            ray.kill(a)


def _serve(ray, idle, queue):
    pending = {}

    def hand_out():
        while idle and queue:
            a, p = idle.pop(), queue.popleft()
            pending[a.run.remote(p)] = (a, p)

    hand_out()
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        a, p = pending.pop(ref)
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as e:  # lost beyond Ray's retries
            out = _lost(_one_line(e))
            if not _alive(ray, a):
                a = None
        if a is not None:
            idle.append(a)
        hand_out()  # the workers busy again before the driver writes this result
        yield p, out
    while queue:  # every worker is dead for good
        yield queue.popleft(), _lost("no worker left")


def _alive(ray, actor):
    try:
        ray.get(actor.ready.remote(), timeout=120)
        return True
    except ray.exceptions.RayError:
        return False


def _lost(why):
    return {"ok": False, "error": f"worker lost: {why}", "seconds": 0.0, "worker": None}


def _one_line(e):
    """The gist of a (Ray) exception: its last ``SomethingError: ...`` line, else its first."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    errs = [x for x in lines if x.split(":")[0].endswith(("Error", "Exception"))]
    return (errs or lines or [type(e).__name__])[-1 if errs else 0]
