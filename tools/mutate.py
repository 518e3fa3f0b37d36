"""Mutation testing of the modules whose logic the tests must pin down (``make mutate``), with
mutmut 3 (the ``mutate`` extra), one module group at a time, each with its own narrow tests.

``python tools/mutate.py run [GROUP ...]`` mutates each group (default: all of :data:`GROUPS`)
in its own working directory ``build/mutate/<group>/``, then writes the report;
``python tools/mutate.py report`` only writes the report; ``--list`` names the groups.

Contract:

* A group's mutants are tested only against the group's test files, and mutmut narrows that
  further to the tests that call the mutated function (it records which test calls which
  function in one run of the group's tests first).
* A run is resumable: every verdict is saved as it lands (``mutants/<file>.meta`` in the group's
  directory), and a rerun tests only the mutants without one. mutmut regenerates the mutants of
  a mutated file that changed and drops the verdicts of its changed functions only, but the
  other files it copied (the tests among them) stay as copied: delete ``build/mutate/<group>/``
  after changing them, or to start the group afresh.
* The report (``docs/results/mutation/``: ``summary.md``, ``summary.json``, ``scores.csv``)
  covers the groups that have results: killed / total, survivors, timeouts, every other
  verdict by name, the wall time and load average of each run, and every surviving mutant
  with its file, line and diff. A group mutates only the functions its ``functions`` globs
  name; mutants of other functions are neither run nor counted.
"""
import argparse
import csv
import dataclasses
import fnmatch
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutate"
OUT = ROOT / "docs" / "results" / "mutation"
#: The packages copied into each group's mutation tree (the tests import across all of them).
PACKAGES = ("hw", "golden", "synth", "realm", "tb")


@dataclasses.dataclass(frozen=True)
class Group:
    """Source files mutated together, the test files that judge them, and the functions (mutmut
    mangled-name globs: ``x_name`` for a function, ``xǁClassǁname`` for a method) mutated."""

    files: tuple
    tests: tuple
    functions: tuple = ("*",)


GROUPS = {
    "golden.stats": Group(("golden/stats.py", "golden/params.py"),
                          ("tb/test_stats.py", "tb/test_golden_batch.py")),
    "golden.tiler": Group(("golden/tiler.py",), ("tb/test_tiler.py",)),
    "golden.faults": Group(("golden/faults.py",), ("tb/test_faults.py",)),
    "realm.llm.inject": Group(("realm/llm/inject.py",), ("tb/test_llm_inject.py",)),
    "realm.abft.loop": Group(("realm/abft/loop.py",), ("tb/test_llm_abft.py",)),
    "realm.abft.fit": Group(("realm/abft/fit.py",), ("tb/test_llm_fit.py",)),
    "realm.energy": Group(("realm/energy/model.py", "realm/energy/report.py"),
                          ("tb/test_energy.py",)),
    # the fast path's trace encode/decode only (realm/rtl/fastcodec.py), not its port list,
    # build or C++ harness text
    "realm.rtl.fastsim": Group(("realm/rtl/fastcodec.py",), ("tb/test_fastsim.py",),
                               ("xǁ_Layoutǁ*", "x__layout", "x__pack_field", "x__row",
                                "x_encode_program", "x__fault_records", "x__item_records",
                                "x__unpack_field", "x__columns", "x_decode_trace",
                                "x__dicts")),
    "realm.campaign.stats": Group(("realm/campaign/stats.py",), ("tb/test_adaptive.py",)),
    # the adaptive rounds, and the validation of their rules in the spec module
    "realm.campaign.adaptive": Group(
        ("realm/campaign/adaptive.py", "realm/campaign/spec.py"), ("tb/test_adaptive.py",),
        ("x_tolerance", "x_cell_key", "x_cells", "x_judge", "x_next_points", "x_verdict_rows",
         "x_write_verdicts", "x_verdicts_path", "x_adaptive_rules", "x__positive")),
}


def mutmut_config(group):
    """The ``[tool.mutmut]`` table of a group's working directory (TOML)."""
    def toml_list(items):
        return "[" + ", ".join(json.dumps(x) for x in items) + "]"
    return "\n".join([
        "", "[tool.mutmut]",
        f"source_paths = {toml_list(PACKAGES)}",
        f"only_mutate = {toml_list(group.files)}",
        f"pytest_add_cli_args_test_selection = {toml_list(group.tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        # forked from a server that imported the tests but ran no torch op: fork-safe with torch
        'process_isolation = "forkserver"',
        "use_git_change_detection = false", ""])


def prepare(name):
    """Create (once) the group's working directory: the packages as links, the project's
    ``pyproject.toml`` with the group's ``[tool.mutmut]`` table appended. Return its path."""
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if not (work / pkg).exists():
            (work / pkg).symlink_to(ROOT / pkg, target_is_directory=True)
    text = (ROOT / "pyproject.toml").read_text() + mutmut_config(GROUPS[name])
    if not (work / "pyproject.toml").exists() or (work / "pyproject.toml").read_text() != text:
        (work / "pyproject.toml").write_text(text)
    return work


def mutants(work, group):
    """``{mutant name: (file, exit code or None)}`` of the group's functions, from the saved
    verdicts (empty before the first run has generated the mutants)."""
    out = {}
    for path in group.files:
        meta = work / "mutants" / (path + ".meta")
        if meta.exists():
            for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
                func = key.rpartition(".")[2].partition("__mutmut_")[0]
                if any(fnmatch.fnmatch(func, g) for g in group.functions):
                    out[key] = (path, code)
    return out


def run(name):
    """Mutate one group, resuming where its saved verdicts stop; log the run's wall time and
    load average to ``runs.jsonl`` in its directory. Return mutmut's exit status."""
    group, work = GROUPS[name], prepare(name)
    known = mutants(work, group)
    if known:  # resume: name exactly the mutants still without a verdict
        names = [k for k, (_, code) in known.items() if code is None]
        if not names:
            return 0
    else:
        names = [] if group.functions == ("*",) else [
            f"{f.replace('/', '.')[:-3]}.{g}__mutmut_*" for f in group.files
            for g in group.functions]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    # through cli() rather than python -m, so that mutmut.__main__ is imported exactly once
    cmd = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())",
           "run", "--max-children", "1", *names]
    load0, t0 = os.getloadavg(), time.time()
    rc = subprocess.run(cmd, cwd=work, env=env, check=False).returncode
    done = sum(code is not None for _, code in mutants(work, group).values())
    with open(work / "runs.jsonl", "a") as f:
        f.write(json.dumps({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
                            "wall_s": round(time.time() - t0, 1), "rc": rc,
                            "tested": done - sum(c is not None for _, c in known.values()),
                            "load_before": [round(x, 2) for x in load0],
                            "load_after": [round(x, 2) for x in os.getloadavg()]}) + "\n")
    return rc


def locate(root, path, key, diff):
    """The line in ``root/path`` of the first line ``diff`` (of mutant ``key``) removes: the
    first such line after the mutated function's ``def`` (None if not found)."""
    removed = [ln[1:].strip() for ln in diff.splitlines()
               if ln.startswith("-") and not ln.startswith("---")]
    mangled = key.rpartition(".")[2].partition("__mutmut_")[0]
    func = mangled.rpartition("ǁ")[2] if "ǁ" in mangled else mangled[2:]
    lines = [ln.strip() for ln in (root / path).read_text().splitlines()]
    start = next((i for i, ln in enumerate(lines)
                  if ln.startswith((f"def {func}(", f"async def {func}("))), 0)
    return next((i + 1 for i in range(start, len(lines)) if removed and lines[i] == removed[0]),
                None)


def group_report(name):
    """The report entry of one group, or None if it has no results yet."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    group, work = GROUPS[name], WORK / name
    found = mutants(work, group) if work.exists() else {}
    if not any(code is not None for _, code in found.values()):
        return None
    status = {k: status_by_exit_code[code] for k, (_, code) in found.items()}
    counts = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    cwd = os.getcwd()
    os.chdir(work)  # mutmut reads its config and the mutated files from there
    reset_config()
    try:
        survivors = []
        for key in sorted(k for k, s in status.items() if s == "survived"):
            path = found[key][0]
            diff = get_diff_for_mutant(key, path=pathlib.Path(path))
            survivors.append({"mutant": key, "file": path, "line": locate(ROOT, path, key, diff),
                              "diff": diff})
    finally:
        os.chdir(cwd)
    runs = [json.loads(ln) for ln in (work / "runs.jsonl").read_text().splitlines()] \
        if (work / "runs.jsonl").exists() else []
    killed, total = counts.get("killed", 0), len(status)
    return {"group": name, "files": list(group.files), "tests": list(group.tests),
            "functions": list(group.functions), "total": total, "killed": killed,
            "survived": counts.get("survived", 0), "timeout": counts.get("timeout", 0),
            "not_checked": counts.get("not checked", 0), "verdicts": counts,
            "score": round(killed / total, 4) if total else None, "runs": runs,
            "survivors": survivors}


def report():
    """Write ``summary.json``, ``scores.csv`` and ``summary.md`` under :data:`OUT`."""
    entries = [e for e in map(group_report, GROUPS) if e]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    cols = ["group", "total", "killed", "survived", "timeout", "not_checked", "score"]
    with open(OUT / "scores.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + ["wall_s"])
        for e in entries:
            w.writerow([e[c] for c in cols] + [round(sum(r["wall_s"] for r in e["runs"]), 1)])
    md = ["# Mutation testing: scores and survivors", "",
          "Written by `tools/mutate.py report` (`make mutate`); how to read it: `README.md`.", "",
          "| group | killed / total | survived | timeout | other | wall (s) | load (1 min) |",
          "|---|---|---|---|---|---|---|"]
    for e in entries:
        other = e["total"] - e["killed"] - e["survived"] - e["timeout"]
        loads = " ".join(f"{r['load_before'][0]}→{r['load_after'][0]}" for r in e["runs"])
        md.append(f"| `{e['group']}` | {e['killed']} / {e['total']} | {e['survived']} | "
                  f"{e['timeout']} | {other} | {sum(r['wall_s'] for r in e['runs']):.0f} | "
                  f"{loads} |")
    missing = [g for g in GROUPS if g not in {e["group"] for e in entries}]
    if missing:
        md += ["", "Not run yet: " + ", ".join(f"`{g}`" for g in missing) + "."]
    for e in entries:
        md += ["", f"## `{e['group']}`: {len(e['survivors'])} survivors", "",
               (f"Files {', '.join(e['files'])}; tests {', '.join(e['tests'])}; "
                f"verdicts {json.dumps(e['verdicts'], ensure_ascii=False)}.")]
        for s in e["survivors"]:
            md += ["", f"`{s['mutant']}` ({s['file']}:{s['line']})", "", "```diff",
                   s["diff"], "```"]
    (OUT / "summary.md").write_text("\n".join(md) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("run", "report"))
    p.add_argument("groups", nargs="*", help="groups to run (default: all)")
    p.add_argument("--list", action="store_true", help="name the groups and their files")
    a = p.parse_args(argv)
    bad = [g for g in a.groups if g not in GROUPS]
    if bad:
        p.error(f"unknown group {bad[0]!r}; groups: {', '.join(GROUPS)}")
    if a.list:
        for name, g in GROUPS.items():
            print(f"{name}: {' '.join(g.files)} <- {' '.join(g.tests)}")
        return 0
    rc = 0
    if a.command == "run":
        for name in a.groups or GROUPS:
            rc = run(name) or rc
    report()
    return rc


if __name__ == "__main__":
    sys.exit(main())
