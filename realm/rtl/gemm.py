"""The GEMM of ``realm sim``, ``realm run`` and ``realm bench``, shared by the cocotb module
:mod:`realm.rtl.tb_gemm` and the fast path (:mod:`realm.rtl.fastsim`): the program a GEMM plays,
the tiles'
decisions, and the JSON result both write."""
from golden.stimulus import collect, decisions
from golden.workload import TiledGemm, llm_like_operands


def gemm_program(config, shape, seed, operands=None, faults=None, params=None):
    """``(gemm, program, faults)`` of a GEMM of ``shape`` (m, k, n) on ``config``'s array:
    seeded LLM-like operands, or the ``x`` and ``w`` of the ``.npz`` file ``operands``; the
    fault list of the JSON file ``faults``; ``params`` the parameter sets to program first
    (:func:`param_program`). With faults, ABFT and no parameter file, sets 0-3 are
    :func:`golden.stats.policy_sets` and the tiles use set 2 (realm)."""
    m, k, n = shape
    if operands:
        import numpy as np
        import torch
        with np.load(operands) as f:
            xw = torch.from_numpy(f["x"]), torch.from_numpy(f["w"])
    else:
        xw = llm_like_operands(m, k, n, seed, config.data_width)
    gemm = TiledGemm(config, *xw)
    program = gemm.program()
    fault_list = []
    if faults:
        from golden.faults import load_faults
        fault_list = load_faults(faults, config, port=config.fault_port)
    if params:  # the sets of a parameter file; tiles use the chosen component's
        from golden.params import StatParams
        program = ([("params", s, StatParams(**p)) for s, p in params["sets"]]
                   + [("select", params["select"])] + program)
    elif fault_list and config.abft.value != "none":
        from golden.stats import policy_sets
        # Parameter sets 0-3: classic, approx, realm, realm with |d| MSD; tiles use realm.
        program = policy_sets(config) + [("select", 2)] + program
    return gemm, program, fault_list


def gemm_result(config, seed, gemm, faults, got, rtl_seconds, simulator, params=None,
                cpu_seconds=None):
    """``(result, product)``: the JSON result of a GEMM whose RTL trace is ``got`` (taking
    ``rtl_seconds`` of wall-clock time and ``cpu_seconds`` of this process's CPU time in
    ``simulator``), and the product the array computed. The golden-model figures are the
    caller's to add."""
    product = gemm.assemble(collect(config, got))
    reference = gemm.reference()
    result = {
        "config": config.to_dict(), "gemm": [gemm.x.shape[0], gemm.x.shape[1],
                                             gemm.w.shape[1]],
        "seed": seed, "tiles": gemm.tiles, "cycles": len(got), "macs": gemm.macs,
        "simulator": simulator, "rtl_seconds": rtl_seconds,
        "rtl_macs_per_s": gemm.macs / rtl_seconds,
        **({"rtl_cpu_seconds": cpu_seconds, "rtl_cpu_macs_per_s": gemm.macs / cpu_seconds}
           if cpu_seconds else {}),
        "matches_oracle": bool((product == reference).all()),
        "wrong_elements": int((product != reference).sum()),
        "faults": [f.to_dict() for f in faults],
    }
    if params:
        result["params"] = {k: params[k] for k in ("file", "component", "select")}
    if config.abft.value != "none":
        result["decisions"] = decisions(got)
        last = got[-1]
        result["counters"] = {k[2:]: last[k] for k in last if k.startswith("c_")}
    return result, product


def param_program(path, config, component=None):
    """``(config, program)``: the parameter sets of the ``realm-params/1`` file ``path`` for
    ``config``'s array, the set the tiles use (``component``'s, default the file's first), and
    ``config`` with room for every set. ``ValueError`` with one line if the file does not fit."""
    from golden.params import ParamsError, read_params
    try:
        sets = read_params(path, config.replace(param_sets=16))
    except ParamsError as e:
        raise ValueError(str(e)) from None
    if not sets:
        raise ValueError(f"parameter file {path!r} holds no parameter set")
    component = component or next(iter(sets))
    if component not in sets:
        raise ValueError(f"parameter file {path!r} has no set for component {component!r} "
                         f"(it has {', '.join(sets)})")
    need = max(s for s, _ in sets.values()) + 1
    config = config.replace(param_sets=max(config.param_sets, need))
    program = {"file": str(path), "component": component, "select": sets[component][0],
               "sets": [[s, vars(p)] for s, p in sorted(sets.values(), key=lambda e: e[0])]}
    return config, program
