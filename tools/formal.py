"""The INT8 no-false-alarm proofs (``make formal``): every proof of ``tb/formal.py`` at its
depth, timed, with the machine's load, into ``docs/results/formal/results.json`` and
``results.csv`` (the README there reads them).

``python tools/formal.py run [--only SUBSTRING]`` runs the word-level lemmas, the k-induction
proofs of the cut arrays (:data:`tb.formal.SIZES` per dataflow x ABFT variants) and of the
statistical unit (2 and 3 differences per tile, each variant), and the mutations that must be
refuted; it exits non-zero if any result is not the expected one. ``--only`` keeps the rows
whose name contains the substring (the results file then holds those rows only).
"""
import argparse
import csv
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tb.formal import (DATAFLOWS, MUTATION_DEPTH, MUTATIONS, SIZES, STAT_DEPTH,  # noqa: E402
                       VARIANTS, ProductSpec, StatSpec, int8_config, product_lemmas, product_runs,
                       run_spec, ws_sum_lemmas)

OUT = ROOT / "docs" / "results" / "formal"
WORK = ROOT / "build" / "formal"
FIELDS = ("name", "part", "property", "array", "dataflow", "abft", "widths", "engine", "mode",
          "depth", "expected", "result", "ok", "wall_s", "load_before", "load_after")


def _jobs():
    """``(name, fields, run)``: ``run()`` returns the result word."""
    for dataflow in DATAFLOWS:
        for size in (2, 3):
            config = int8_config(dataflow, size, "realm")
            yield (f"lemmas-{config.name}", dict(
                part="2", property="checksum PE product == ghost sum of 8x8 products; "
                "product with a zero operand is 0", array=config.name, dataflow=dataflow,
                abft="any", widths=f"i8, cw{config.checksum_weight_width}", engine="z3",
                mode="word-level validity", depth="", expected="proved"),
                lambda c=config: "proved" if all(product_lemmas(c).values()) else "FAILED")
    for size in SIZES["ws"]:
        config = int8_config("ws", size, "realm")
        yield (f"sum-lemmas-{config.name}", dict(
            part="1 (sums => d)", property="ghost eᵀy delayed == ghost checksum sum, as "
            "functions of the products", array=config.name, dataflow="ws", abft="any",
            widths="i8 a32", engine="z3", mode="word-level validity", depth="",
            expected="proved"),
            lambda c=config: "proved" if all(ws_sum_lemmas(c).values()) else "FAILED")
    for dataflow in DATAFLOWS:
        for size in SIZES[dataflow]:
            for abft in VARIANTS:
                config = int8_config(dataflow, size, abft)
                for part, depth in product_runs(dataflow, size):
                    yield (f"array-{config.id}-{part}", dict(
                        part=f"1 ({part})", property=_PROPERTY[part], array=config.name,
                        dataflow=dataflow, abft=abft, widths="i8 a32", engine="smtbmc yices",
                        mode="prove (k-induction)", depth=depth, expected="proved"),
                        lambda c=config, p=part, k=depth: _sby(ProductSpec(c, part=p),
                                                               f"cut-{c.id}-{p}", "prove", k))
    for n in (2, 3):
        for abft in VARIANTS:
            yield (f"stats-n{n}-{abft}", dict(
                part="3", property="d == 0 whenever valid => no flag, no recompute, no "
                "mismatch, flag counters 0 (+ invariants)", array=f"n={n}", dataflow="any",
                abft=abft, widths="a32", engine="smtbmc yices", mode="prove (k-induction)",
                depth=STAT_DEPTH, expected="proved"),
                lambda n=n, a=abft: _sby(StatSpec(n=n, acc_width=32, abft=a), f"stats-n{n}-{a}",
                                         "prove", STAT_DEPTH))
    for dataflow in DATAFLOWS:
        config = int8_config(dataflow, 2, "realm")
        for mutation in MUTATIONS:
            yield (f"mutation-{config.name}-{mutation}", dict(
                part="1 (mutated)", property=f"{mutation}: a reachable counterexample",
                array=config.name, dataflow=dataflow, abft="realm", widths="i8 a32",
                engine="smtbmc yices", mode="bmc", depth=MUTATION_DEPTH, expected="refuted"),
                lambda c=config, mu=mutation: _sby(ProductSpec(c, mutation=mu),
                                                   f"cut-{c.id}-{mu}", "bmc", MUTATION_DEPTH))
        if dataflow == "ws":
            yield (f"mutation-sum-lemmas-{config.name}-drop", dict(
                part="1 (sums => d, mutated)", property="one product missing from the "
                "checksum side", array=config.name, dataflow=dataflow, abft="any",
                widths="i8 a32", engine="z3", mode="word-level validity", depth="",
                expected="refuted"),
                lambda c=config: "refuted" if not ws_sum_lemmas(c, drop=True)["reassociation"]
                else "proved")
        yield (f"mutation-lemma-{config.name}-zero_extend", dict(
            part="2 (mutated)", property="widen with zero extension", array=config.name,
            dataflow=dataflow, abft="any", widths="i8", engine="z3",
            mode="word-level validity", depth="", expected="refuted"),
            lambda c=config: "refuted" if not product_lemmas(c, zero_extend=True)["widen"]
            else "proved")


_PROPERTY = {
    "all": "checksum PE operands == checked PEs' operands; d == 0 whenever d_valid "
           "(+ invariants)",
    "sums": "every datapath register == its ghost sum of the products, in the hardware's order",
    "operands": "checksum PE operands == checked PEs' operands; checksum weights == row sums",
}


def _sby(spec, name, mode, depth):
    passed, log = run_spec(spec, WORK / name, mode=mode, depth=depth)
    (WORK / name / "run.log").write_text(log)
    if mode == "prove":
        return "proved" if passed and "successful proof by k-induction" in log else "FAILED"
    return "refuted" if not passed and "failed assertion" in log else "not refuted"


def run(only=None):
    rows = []
    for name, fields, job in _jobs():
        if only and only not in name:
            continue
        load_before = os.getloadavg()[0]
        start = time.monotonic()
        result = job()
        wall = time.monotonic() - start
        row = {"name": name, **fields, "result": result, "ok": result == fields["expected"],
               "wall_s": round(wall, 1), "load_before": round(load_before, 2),
               "load_after": round(os.getloadavg()[0], 2)}
        rows.append(row)
        print(f"{name}: {result} ({wall:.1f} s, load {load_before:.2f})", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "total_wall_s": round(sum(r["wall_s"] for r in rows), 1),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    with open(OUT / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return all(r["ok"] for r in rows)


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/formal.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the proofs and write the results")
    r.add_argument("--only", help="only the rows whose name contains this")
    args = p.parse_args(argv)
    return 0 if run(args.only) else 1


if __name__ == "__main__":
    sys.exit(main())
