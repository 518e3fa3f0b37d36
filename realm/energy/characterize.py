"""Per-component voltage tables from real SmolLM2 operand streams (docs/energy.md
§1-§5): capture one validation window's GEMM operands from the W8A8 model, cut each
component's into the stream one PE of the array sees (:mod:`realm.energy.streams`), simulate the
SDF-annotated PE on it (:mod:`synth.timing`) and turn each waveform into a voltage table row set
(:mod:`synth.vtable`) under every timing setting of :data:`SETTINGS`:

* **literal**: ReaLM's margin, the clock 500/439 times the PE's STA period at nominal; the
  tail's endpoint is the STA bound.
* **anchored** at ``V_on`` (docs/energy.md §3): the margin that makes the clock at ``V_on`` the
  streams' dynamic endpoint (:func:`synth.vtable.dynamic_endpoint`, the latest requirement
  of any component's stream plus a spacing), which is also the tail's endpoint: no error at
  or above ``V_on``, the first just below it, the slowest component's first.

The PE is synthesized and timed once; each component costs one Icarus run. Work files go under
``<work>/<array>/``: the netlist and SDF, one ``<component>/`` per stream with ``stream.npz``
(usable as ``realm timing --stream``) and ``events.npz`` (the waveform, reloaded instead of
simulated again when the stream is the same).
"""
import json
import math
import pathlib
import time

import numpy as np

#: Timing settings of the tables (docs/energy.md §8 items 1 and 2): name -> (delay curve, onset
#: voltage of the anchored margin, or None for ReaLM's literal 500/439 margin). The first is
#: the default, the one the campaign runs; the others are remapped onto it by the report.
SETTINGS = {"A-on0.84": ("A", 0.84), "B-on0.84": ("B", 0.84), "C-on0.84": ("C", 0.84),
            "A-on0.80": ("A", 0.80), "A-on0.88": ("A", 0.88),
            "A-literal": ("A", None), "B-literal": ("B", None), "C-literal": ("C", None)}
DEFAULT = "A-on0.84"
#: Cycles per Icarus run: a longer stream is simulated in chunks, each its own stream (seed
#: ``seed * 1000 + chunk``) from the reset state, and read as one (:class:`synth.vtable.Waves`).
CHUNK = 20000
#: Voltages of the tables: 5 mV steps over the range every curve covers.
GRID = "0.90:0.60:0.005"


def _log(msg):
    print(msg, flush=True)


def capture_gemms(settings, components):
    """{component: GEMM stacks} of one window of the calibration text (WikiText-2 validation)
    through the campaign's W8A8 model, and the model's name."""
    import torch

    from realm.campaign import worker
    from realm.energy import streams
    from realm.llm import loader

    torch.set_num_threads(2)
    model, rt, tok, _, bos = worker.prepare(settings)
    calib = loader.text_path(settings["calib_text"])
    window = loader.token_windows(tok, calib, 1, settings["length"], bos)[0]
    return streams.capture(model, rt, window, components)


def _wave(pe, netlist, annotated, stream, workdir):
    from synth import timing
    from synth.waveform import Waveform

    workdir.mkdir(parents=True, exist_ok=True)
    saved, events = workdir / "stream.npz", workdir / "events.npz"
    if saved.exists() and events.exists():
        with np.load(saved) as f:
            same = set(f.files) == set(stream) and all(np.array_equal(f[k], stream[k])
                                                        for k in stream)
        if same:
            return Waveform.load(events), 0.0
    t = time.perf_counter()
    wave = timing.simulate(pe, netlist, annotated, stream, workdir)
    np.savez_compressed(saved, **stream)
    wave.save(events)
    timing.clean(workdir)
    (workdir / "events.txt").unlink(missing_ok=True)
    return wave, time.perf_counter() - t


def characterize(dataflow, rows, cols, work, out, settings, components, cycles, seed,
                 grid=GRID):
    """Write one table per timing setting, ``<out>/<array>-<setting>.json``; return their
    paths."""
    from hw.config import ArrayConfig
    from realm.energy import streams
    from realm.energy.vtable import FORMAT
    from synth import timing, voltage, vtable
    from synth.sta import sta as run_sta
    from synth.sta import synthesize_pe

    config = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow)
    array = f"{rows}x{cols}-{dataflow}"
    pe = timing.select_pe(config)
    lrows = timing.leaf_rows(pe)
    work = pathlib.Path(work) / array
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    netlist = synthesize_pe(pe, work)
    liberty = run_sta(netlist, work)
    annotated = run_sta(netlist, work, sdf=liberty.sdf)
    _log(f"pe          {pe.key} (rows {lrows[0]}-{lrows[1]}), min period "
         f"{liberty.min_period:.1f} ps, STA bound (SDF) {annotated.acc_period:.1f} ps "
         f"({time.perf_counter() - t0:.0f} s)")
    t = time.perf_counter()
    gemms = capture_gemms(settings, components)
    ks = streams.reduction_lengths(gemms)
    _log(f"capture     {len(components)} components x {len(gemms[components[0]])} layers "
         f"({time.perf_counter() - t:.0f} s)")
    waves, meta = {}, {}
    for c in components:
        parts, prods, secs = [], [], 0.0
        for i in range(math.ceil(cycles / CHUNK)):
            n = min(CHUNK, cycles - i * CHUNK)
            stream = streams.pe_stream(pe, gemms[c], n, seed * 1000 + i, lrows)
            wave, s = _wave(pe, netlist, annotated, stream, work / c / f"chunk{i}")
            parts.append(wave)
            prods.append(streams.products(pe, stream))
            secs += s
        wave = vtable.Waves(parts)
        waves[c] = (wave, np.concatenate(prods))
        k = ks[c]
        k_eff = math.ceil(k / rows) * rows if dataflow == "ws" else k
        meta[c] = {"k": k, "k_eff": k_eff, "gls_seconds": round(secs, 1),
                   "max_settle_ps": wave.max_settle, "safe_clock_ps": wave.safe_clock}
        _log(f"  {c:5s} K {k:5d} (k_eff {k_eff}): latest settle {wave.max_settle:.0f} ps, "
             f"error-free from {wave.safe_clock:.0f} ps ({secs:.0f} s)")
    del gemms
    ref = liberty.min_period
    paths = []
    dynamic = max(vtable.dynamic_endpoint(w.requirement()) for w, _ in waves.values())
    for name, (curve, onset) in SETTINGS.items():
        if onset is None:  # literal: no cycle needs longer than the STA bound
            margin, endpoint = voltage.MARGIN, annotated.acc_period
        else:  # anchored: the clock at the onset is the streams' dynamic endpoint
            margin = dynamic * voltage.CURVES[curve].slowdown(onset) / ref
            endpoint = dynamic
        comps = {}
        for c, (wave, prods) in waves.items():
            tab = vtable.component_table(wave, prods, endpoint, ref, grid, curve, margin)
            comps[c] = {**meta[c], **tab}
        doc = {"format": FORMAT, "array": array, "dataflow": dataflow, "setting": name,
               "model": {"curve": voltage.CURVES[curve].to_dict(),
                         "v_nominal": voltage.V_NOMINAL, "margin": margin, "onset_v": onset,
                         "reference_period_ps": ref, "clock_ps": round(margin * ref, 3),
                         "sta_bound_ps": annotated.acc_period, "endpoint_ps": endpoint,
                         "n_tail": vtable.N_TAIL,
                         "p_floor": vtable.P_FLOOR},
               "pe": {"leaf": pe.key, "at": list(pe.at), "leaf_rows": list(lrows),
                      "count": pe.count, "sta": liberty.to_dict()},
               "stream": {"model": settings["model"], "text": settings["calib_text"],
                          "length": settings["length"], "cycles": cycles, "seed": seed,
                          "ws_segment": streams.SEGMENT},
               "components": comps}
        path = pathlib.Path(out) / f"{array}-{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        paths.append(path)
    return paths
