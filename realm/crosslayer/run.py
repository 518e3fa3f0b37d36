"""``realm crosslayer``: real SmolLM2 GEMM tiles through the RTL with the LLM injector's errors
as hardware faults, checked against the golden cycle model, the transaction-level statistical
model, the closed loop's decisions and the model's own accumulators
(:mod:`realm.crosslayer.capture`). Writes ``summary.json`` and ``README.md`` to ``--out``."""
import json
import pathlib
import time

DEFAULT_OUT = "docs/results/crosslayer"


def run_rtl(config, jobs, workdir, parts=1, engine=None):
    """Run ``jobs`` (:class:`realm.crosslayer.capture.Job`) on ``config``'s RTL in ``parts``
    simulations, the points of a :func:`realm.campaign.executor.run` on ``engine`` (default local;
    each
    worker builds the simulation once, :func:`sim_init`); return their results in job order
    (see :mod:`realm.rtl.tb_crosslayer`). A simulation that fails fails its point
    (:class:`realm.campaign.executor.PointsFailed` once the others ran)."""
    from realm.campaign import executor
    chunks = [list(range(i, len(jobs), parts)) for i in range(min(parts, len(jobs)))]
    points = [{"n": n, "idx": idx, "jobs": [
        {"a": jobs[i].a, "b": jobs[i].b, "program": jobs[i].program,
         "faults": [vars(f) for f in jobs[i].faults]} for i in idx]}
        for n, idx in enumerate(chunks)]
    out = [None] * len(jobs)

    def put(point, lines):
        for i, r in zip(point["idx"], lines):
            out[i] = r

    job = executor.Job(sim_init, sim_run, (config.to_json(), str(pathlib.Path(workdir).resolve())))
    executor.run(job, points, on_result=put, engine=engine, workers=len(points),
                 cost=lambda p: sum(j["a"].shape[0] * j["a"].shape[1] * j["b"].shape[1]
                                    for j in p["jobs"]),
                 key=lambda p: f"simulation {p['n']}")
    return out


_SIM = {}


def sim_init(config_json, workdir):
    """A worker's set-up: build ``config``'s simulation once (:func:`realm.rtl.sim.build`)."""
    from hw.config import ArrayConfig
    from realm.rtl import sim
    config = ArrayConfig.from_json(config_json)
    _SIM.update(config=config, build=sim.build(config), workdir=pathlib.Path(workdir))
    _SIM["workdir"].mkdir(parents=True, exist_ok=True)


def sim_run(point):
    """One simulation of a point's jobs on the worker's build: their result lines."""
    import torch

    from realm.rtl import sim
    config, workdir, n = _SIM["config"], _SIM["workdir"], point["n"]
    path = workdir / f"jobs-{config.id}-{n}.pt"
    torch.save(point["jobs"], path)
    result = workdir / f"result-{config.id}-{n}.jsonl"
    result.unlink(missing_ok=True)
    env = {"REALM_CONFIG": config.to_json(), "REALM_JOBS": str(path),
           "REALM_RESULT": str(result)}
    log = workdir / f"sim-{config.id}-{n}.log"
    sim.run(_SIM["build"], "realm.rtl.tb_crosslayer", "crosslayer", env, seed=0,
            test_dir=workdir / f"sim-{config.id}-{n}", waves=False, log_file=log)
    lines = [json.loads(x) for x in result.read_text().splitlines()] if result.exists() else []
    if len(lines) != len(point["idx"]):
        raise RuntimeError(f"the simulation ran {len(lines)} of {len(point['idx'])} jobs; "
                           f"see {log}")
    return lines


def campaign(config, model, rt, window, params, components, layer, *, ber, bits, seed, clean,
             workdir, parts=1, min_tiles=0, engine=None):
    """Capture, cut, simulate and check one dataflow; return ``(rows, problems)``: one summary
    row per component and the mismatches found (empty when everything agrees)."""
    from realm.crosslayer import capture as xl
    t0 = time.perf_counter()
    calls = xl.capture(model, rt, window, config, params, components, layer, ber=ber,
                       bits=bits, seed=seed)
    jobs, skipped = xl.jobs(config, calls, params, clean, seed, min_tiles)
    t1 = time.perf_counter()
    results = run_rtl(config, jobs, workdir, parts, engine)
    t2 = time.perf_counter()
    rows, problems = {}, []
    for c in components:
        rows[c] = {"dataflow": config.dataflow.value, "component": c, "calls": 0,
                   "errors_drawn": 0, "jobs_faulty": 0, "jobs_clean": 0, "skipped": skipped
                   if c == components[0] else 0, "tiles": 0, "tiles_with_errors": 0,
                   "faults": 0, "cycles": 0, "mismatching_jobs": 0,
                   "flags_clean": {"classic": 0, "approx": 0, "realm": 0},
                   "flags_faulty": {"classic": 0, "approx": 0, "realm": 0}}
    for call in calls:
        rows[call.component]["calls"] += 1
        if call.errors is not None:
            rows[call.component]["errors_drawn"] += call.errors.idx.numel()
    for job, res in zip(jobs, results):
        row = rows[job.component]
        bad = xl.check(config, job, res)
        if bad:
            row["mismatching_jobs"] += 1
            problems.append(f"{config.id} {job.component} layer {job.layer} gemm {job.g} "
                            f"block ({job.m0}, {job.n0}): {bad[0]}")
        row["jobs_faulty" if job.faults else "jobs_clean"] += 1
        row["tiles"] += len(job.units)
        row["faults"] += len(job.faults)
        row["cycles"] += res["cycles"]
        for (d, _), dec in zip(job.units, res["decisions"]):
            row["tiles_with_errors"] += any(d)
            flags = row["flags_faulty" if any(d) else "flags_clean"]
            for policy in flags:
                flags[policy] += dec[policy]
    for row in rows.values():
        row["seconds_capture"] = round(t1 - t0, 1)
        row["seconds_rtl"] = round(t2 - t1, 1)
    return list(rows.values()), problems


def summary_md(doc):
    """The summary as a Markdown page."""
    s = doc["settings"]
    lines = ["# Cross-layer check: real SmolLM2 tiles through the RTL", "",
             f"Regenerate with `{doc['command']}` ({doc['seconds']:.0f} s on this machine).",
             "", f"{s['array']} arrays, ReaLM variant with the fault port; SmolLM2-135M W8A8, "
             f"one WikiText-2 test window of {s['length']} tokens, layer {s['layer']}; "
             f"errors: the LLM injector's bit flips (BER {s['ber']:g}, bits "
             f"{s['bits'][0]}-{s['bits'][1]}, seed {s['seed']}), placed as the closed loop "
             "places them and injected as `pe.acc` flips through the fault port; "
             f"{s['clean']} clean blocks per GEMM call besides, and more in turn until a "
             f"dataflow has {s['min_tiles']} tiles. Parameter sets: each "
             "component's fit (`docs/results/abft/params/fit.json`) for this array.", "",
             "Every job is checked four ways: the RTL's trace equals the golden cycle model's "
             "on every cycle; its product equals the model's own INT32 accumulator with the "
             "injector's new values; every tile's checksum differences and decisions equal "
             "the transaction-level model's (`golden.tiler`, `golden.stats.decide`); and "
             "those equal what the closed loop (`AbftInjector`) recorded for the same tiles.",
             "", "| dataflow | component | jobs (faulty + clean) | tiles | tiles with errors "
             "| faults injected | flags on clean tiles (classic/approx/realm) | flags on faulty "
             "tiles (classic/approx/realm) | mismatching jobs |", "|---|---|---|---|---|---|---|"
             "---|---|"]
    for r in doc["rows"]:
        fc, ff = r["flags_clean"], r["flags_faulty"]
        lines.append(f"| {r['dataflow']} | {r['component']} | {r['jobs_faulty']} + "
                     f"{r['jobs_clean']} | {r['tiles']} | {r['tiles_with_errors']} | "
                     f"{r['faults']} | {fc['classic']}/{fc['approx']}/{fc['realm']} | "
                     f"{ff['classic']}/{ff['approx']}/{ff['realm']} | "
                     f"{r['mismatching_jobs']} |")
    for df, t in doc["totals"].items():
        lines.append("")
        lines.append(f"**{df}**: {t['tiles']} tiles in {t['jobs']} jobs, {t['faults']} faults "
                     f"injected, {t['cycles']} cycles simulated, {t['mismatching_jobs']} "
                     f"mismatching jobs; {t['skipped']} blocks skipped (two faults in one "
                     "cycle: the fault port takes one).")
    return "\n".join(lines) + "\n"


def run(out, workdir, *, rows, cols, dataflows, components, layer, length, ber, bits, seed,
        clean, min_tiles, fit, workers, engine=None, command_line="realm crosslayer"):
    """Run the cross-layer campaign (:func:`campaign` per dataflow of ``dataflows`` on a
    ``rows`` x ``cols`` realm array, ``workers`` simulations at a time on ``engine``); write
    ``out/summary.json`` and ``out/README.md``; return 0 when every job agreed, else 1."""
    from hw.config import ArrayConfig
    from realm.campaign import worker
    from realm.campaign.spec import GLOBAL
    from realm.crosslayer import capture as xl
    t0 = time.perf_counter()
    settings = {**GLOBAL, "windows": 1, "length": length}
    model, rt, _, windows, _ = worker.prepare(settings)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    found, problems, totals = [], [], {}
    tmp = pathlib.Path(workdir)
    tmp.mkdir(parents=True, exist_ok=True)
    for df in dataflows:
        config = ArrayConfig(rows=rows, cols=cols, dataflow=df, abft="realm", fault_port=True)
        params = xl.component_params(config, fit, settings["model"], length)
        r, p = campaign(config, model, rt, windows[0], params, components, layer,
                        ber=ber, bits=tuple(bits), seed=seed, clean=clean, workdir=tmp,
                        parts=workers, min_tiles=min_tiles, engine=engine)
        found += r
        problems += p
        totals[df] = {k: sum(x[k] for x in r) for k in
                      ("jobs_faulty", "jobs_clean", "tiles", "faults", "cycles",
                       "mismatching_jobs", "skipped")}
        totals[df]["jobs"] = totals[df]["jobs_faulty"] + totals[df]["jobs_clean"]
        print(f"{df}: {totals[df]['tiles']} tiles, {totals[df]['jobs']} jobs, "
              f"{totals[df]['faults']} faults, {totals[df]['mismatching_jobs']} "
              "mismatching jobs", flush=True)
    doc = {"command": command_line, "seconds": time.perf_counter() - t0,
           "settings": {"array": f"{rows}x{cols}", "length": length, "layer": layer,
                        "ber": ber, "bits": list(bits), "seed": seed, "clean": clean,
                        "min_tiles": min_tiles, "components": list(components),
                        "model": settings["model"]},
           "rows": found, "totals": totals, "problems": problems[:50]}
    (out / "summary.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "README.md").write_text(summary_md(doc))
    for p in problems[:10]:
        print("MISMATCH", p)
    print(f"summary     {out / 'README.md'} ({doc['seconds']:.0f} s)")
    return 1 if problems else 0
