"""Run a GEMM through the generated RTL under Verilator and print what happened: ``realm sim``
(LLM-like operands) and ``realm run`` (a user's own matrices). By default through cocotb (the
module :mod:`realm.rtl.tb_gemm`, run by :mod:`realm.rtl.sim`), every cycle checked against the
golden model;
with ``--fast`` through the compiled harness of :mod:`realm.rtl.fastsim` (no Python per cycle)."""
import json
import pathlib
import tempfile
import time


class SimulationError(RuntimeError):
    """The simulator could not be built or run; the message is one line."""


def run_gemm(config, gemm, seed, result_path, waves=False, faults=None, operands=None,
             product=None, params=None, trace=None, optimize=None):
    """Build ``config`` and run the GEMM cocotb module; return its JSON result. ``operands``
    names a ``.npz`` of ``x`` and ``w`` to use instead of seeded LLM-like ones; ``product``
    where the RTL's product is written (``.npy``); ``params`` the parameter program of
    :func:`realm.rtl.gemm.param_program` (its file travels to the simulator as a path, the
    component by name); ``trace`` where the RTL's per-cycle outputs are written (JSON);
    ``optimize`` the model's C++ optimization (:func:`realm.rtl.sim.build`).
    :class:`SimulationError` if the simulation does not finish."""
    from realm.rtl import sim
    waves = waves or sim.waves_requested()
    build_dir = sim.build(config, waves=waves, optimize=optimize)
    pathlib.Path(result_path).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="realm-sim-") as tmp:
        env = {"REALM_CONFIG": config.to_json(), "REALM_GEMM": ",".join(map(str, gemm)),
               "REALM_RESULT": str(pathlib.Path(result_path).resolve())}
        if faults:
            env["REALM_FAULTS"] = str(pathlib.Path(faults).resolve())
        if operands:
            env["REALM_OPERANDS"] = str(pathlib.Path(operands).resolve())
        if product:
            env["REALM_PRODUCT"] = str(pathlib.Path(product).resolve())
        if params:
            env["REALM_PARAMS"] = str(pathlib.Path(params["file"]).resolve())
            env["REALM_COMPONENT"] = params["component"]
        if trace:
            env["REALM_TRACE"] = str(pathlib.Path(trace).resolve())
        log = pathlib.Path(result_path).with_suffix(".log").resolve()
        try:
            sim.run(build_dir, "realm.rtl.tb_gemm", "gemm", env, seed=seed, test_dir=tmp,
                    waves=waves, log_file=log)
        except SystemExit:
            pass  # a failed check: the JSON result says which
        if not pathlib.Path(result_path).exists():
            raise SimulationError(f"the simulation did not finish; see its log {log}")
    result = json.loads(pathlib.Path(result_path).read_text())
    if waves:
        result["waves"] = str(sim.WAVES / f"{build_dir.name}-gemm.vcd")
    return result


def run_gemm_fast(config, gemm, seed, result_path, faults=None, operands=None, product=None,
                  params=None):
    """:func:`run_gemm` through the fast path (:func:`realm.rtl.fastsim.run_program`): the same
    program and JSON result, without the golden model (``matches_golden_every_cycle`` is
    None: not checked). Raises :class:`SimulationError` (one line) if the harness cannot be
    built or run."""
    from realm.rtl import fastsim
    from realm.rtl.gemm import gemm_program, gemm_result
    gemm_, program, fault_list = gemm_program(config, gemm, seed, operands, faults, params)
    try:
        t0 = time.perf_counter()
        fastsim.build(config)
        t_build = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        got = fastsim.run_program(config, program, fault_list)
        t_rtl, c_rtl = time.perf_counter() - t0, time.process_time() - c0
    except fastsim.FastSimError as e:
        raise SimulationError(str(e)) from None
    result, c = gemm_result(config, seed, gemm_, fault_list, got, t_rtl, "fast", params,
                            cpu_seconds=c_rtl)
    result.update(build_seconds=t_build, matches_golden_every_cycle=None)
    if product:
        import numpy as np
        np.save(product, c.numpy())
    pathlib.Path(result_path).write_text(json.dumps(result, indent=1))
    return result


def report(config, r, out, t0, faults=None, own=False):
    """Print the summary of a GEMM result ``r``; return the exit status (0 if it matched)."""
    golden = r["matches_golden_every_cycle"]
    ok = golden is not False and (r["matches_oracle"] or faults)
    print(f"config      {config.id} ({config.rows}x{config.cols} {config.dataflow}, "
          f"INT{config.data_width} x INT{config.data_width} -> INT{config.acc_width})")
    what = "your operands" if own else f"LLM-like operands, seed {r['seed']}"
    print(f"workload    GEMM {r['gemm'][0]}x{r['gemm'][1]} @ {r['gemm'][1]}x{r['gemm'][2]}, "
          f"{what}")
    print(f"tiles       {r['tiles']}")
    if r.get("params"):
        pr = r["params"]
        print(f"params      {pr['file']}: component {pr['component']}'s set ({pr['select']}) "
              "decides every tile")
    print(f"cycles      {r['cycles']}  ({r['macs'] / r['cycles']:.1f} useful MAC/cycle of "
          f"{config.rows * config.cols} PEs)")
    if r.get("simulator") == "fast":
        print(f"simulated   {r['rtl_macs_per_s']:,.0f} MAC/s in the compiled Verilator harness "
              f"({r['rtl_seconds']:.2f} s; build {r['build_seconds']:.1f} s)")
    else:
        print(f"simulated   {r['rtl_macs_per_s']:,.0f} MAC/s in Verilator+cocotb "
              f"({r['rtl_seconds']:.2f} s); golden cycle model "
              f"{r['golden_macs_per_s']:,.0f} MAC/s")
    if faults:
        _print_faults(config, faults, r)
    oracle = "equal" if r["matches_oracle"] else (
        f"{r['wrong_elements']} wrong elements" + (" (the faults' effect)" if faults else ""))
    if golden is None:
        print(f"match       {'YES' if ok else 'NO'}: product vs int64 oracle: {oracle} (the "
              "per-cycle comparison with the golden model is not run under --fast)")
    else:
        print(f"match       {'YES' if ok else 'NO'}: RTL vs golden model on every output, every "
              f"cycle: {'equal' if golden else 'DIFFERENT'}; product vs int64 oracle: {oracle}")
    print(f"result      {out} (log {out.with_suffix('.log')}; total "
          f"{time.perf_counter() - t0:.1f} s with build)")
    if r.get("waves"):
        print(f"waves       {r['waves']}")
    return 0 if ok else 1


def _print_faults(config, faults, r):
    print(f"injected    {len(faults)} fault(s):")
    for f in faults[:8]:
        what = f"bit {f.mask.bit_length() - 1}" if f.mask & (f.mask - 1) == 0 else hex(f.mask)
        print(f"              {f.kind} {what} of {f.site} ({f.row},{f.col}) at cycle {f.cycle}"
              + (f" for {f.duration} cycles" if f.duration > 1 else ""))
    if len(faults) > 8:
        print(f"              ... {len(faults) - 8} more")
    if "counters" not in r:
        print("detected    nothing: the array has no checksum logic (--abft none)")
        return
    c, dec = r["counters"], r["decisions"]
    print(f"detected    {c['tiles_mismatch']} of {c['tiles_checked']} checked tiles had a "
          f"non-zero checksum difference; {c['errors_above']} difference(s) above theta_mag")
    for d in [d for d in dec if d["mismatch"]][:8]:
        print(f"              tile {d['tile']}: MSD {d['msd']}, theta_mag 2^{d['theta_log2']:.2f}, "
              f"freq_eff {d['freq_eff']}; classic {'RECOMPUTE' if d['classic'] else 'ok'}, "
              f"approx {'RECOMPUTE' if d['approx'] else 'ok'}, "
              f"realm {'RECOMPUTE' if d['realm'] else 'tolerate'}")
    print(f"decided     {c['tiles_flagged']} tile(s) flagged for recompute by the array's "
          f"policy ({config.abft}); histogram of floor(log2|d|): {c['hist']}")


def load_matrix(path, name):
    """A 2-D integer matrix from ``path`` (``.npy``, or ``.csv``/``.txt`` of integers);
    ``ValueError`` naming ``name`` if it is not one."""
    import numpy as np
    p = pathlib.Path(path)
    if not p.is_file():
        raise ValueError(f"{name}: file {str(path)!r} does not exist")
    try:
        if p.suffix == ".npy":
            m = np.load(p, allow_pickle=False)
        else:
            m = np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=2)
    except (ValueError, EOFError, OSError) as e:  # EOFError: an empty or truncated .npy
        raise ValueError(f"{name}: {str(path)!r} is not a matrix of integers ({e})") from None
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"{name}: {str(path)!r} must hold a non-empty 2-D matrix, not shape "
                         f"{tuple(m.shape)}")
    if m.dtype.kind == "f":
        if not np.all(np.isfinite(m)) or not np.all(m == np.round(m)):
            raise ValueError(f"{name}: {str(path)!r} holds non-integer values")
    elif m.dtype.kind not in "iub":
        raise ValueError(f"{name}: {str(path)!r} holds {m.dtype} values, not integers")
    return m.astype(np.int64)


def check_operands(config, x, w):
    """Raise ``ValueError`` unless ``x @ w`` fits ``config``: inner dimensions agree and every
    value is a signed ``data_width`` integer."""
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"A is {x.shape[0]}x{x.shape[1]} and B is {w.shape[0]}x{w.shape[1]}: "
                         "the columns of A must equal the rows of B")
    lo, hi = -(1 << (config.data_width - 1)), (1 << (config.data_width - 1)) - 1
    for name, m in (("A", x), ("B", w)):
        if m.min() < lo or m.max() > hi:
            raise ValueError(f"{name} must hold INT{config.data_width} values ({lo} to {hi}), "
                             f"not {int(m.min())} to {int(m.max())}")
