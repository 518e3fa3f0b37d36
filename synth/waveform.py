"""The accumulator's D pins over a gate-level simulated stream (:func:`synth.timing.simulate`),
cycle by cycle: settle times, settled values and what the flip-flops would latch at a shorter
clock. Method: docs/energy.md §1 item 5."""
import numpy as np

__all__ = ["Waveform", "FS"]

#: Simulation time steps (fs) per ps: the SDF gives delays to 1 fs (6 decimals of a ns), and
#: the simulation resolves them exactly.
FS = 1000


class Waveform:
    """The accumulator's D pins over a stream, cycle by cycle (times in ps from each cycle's
    launching edge).

    ``settle[c, k]``: the time of bit ``k``'s last change in cycle ``c`` (0 if none);
    ``settled[c]``: the signed value the bits settle to (the correct next accumulator, checked
    against the golden model by :func:`simulate`); ``latched(clock)[c]``: the signed word the
    accumulator's flip-flops hold at the end of cycle ``c`` if the clock period is ``clock``;
    ``errors(clock) = latched(clock) - settled``.

    A flip-flop latches, bit by bit, the value after the latest change that meets its setup
    time: a rising change at ``t`` if ``t <= clock - setup_rise[k]``, a falling one if ``t <=
    clock - setup_fall[k]`` (``setup_*`` per accumulator bit, ps); the previous cycle's value
    if no change does.

    The constructor takes the simulation's events: times ``t`` (fs), flip-flop indices into
    ``flops`` and new values; those before ``t0`` (fs, cycle 0's launching edge) give the
    initial values; the clock ``period`` is in fs."""

    def __init__(self, t, flop, value, acc_flops, flops, period, t0, cycles, setup_rise=None,
                 setup_fall=None):
        # times in fs (the simulation's resolution: the SDF's 6 decimals of a ns)
        self.cycles = int(cycles)
        self._period = int(period)
        #: Simulation time (fs) of cycle 0's launching edge; cycle ``c``'s is ``c`` periods
        #: later.
        self.origin_fs = int(t0)
        self.acc_width = len(acc_flops)
        self._acc_flops = tuple(acc_flops)
        self._flops = tuple(flops)
        n_f = len(flops)
        t, flop, value = (np.asarray(x, dtype=np.int64) for x in (t, flop, value))
        self._args = {"t": t, "flop": flop, "value": value, "period": self._period, "t0": t0,
                      "cycles": self.cycles, "setup_rise": list(setup_rise or []),
                      "setup_fall": list(setup_fall or [])}
        before = t < t0
        init = np.zeros(n_f, dtype=np.int64)
        seen = np.zeros(n_f, dtype=bool)
        order = np.argsort(t[before], kind="stable")
        for j, v in zip(flop[before][order], value[before][order]):
            init[j], seen[j] = v, True
        if n_f and not seen.all():
            raise ValueError("the waveform has no initial value for some flip-flops")
        rel = t[~before] - t0
        cyc = rel // self._period
        keep = cyc < self.cycles
        rel, cyc = rel[keep], cyc[keep]
        flop, value = flop[~before][keep], value[~before][keep]
        t_rel = rel - cyc * self._period
        group = cyc * max(n_f, 1) + flop
        order = np.lexsort((t_rel, group))  # stable: equal times keep their order
        self._group, self._t = group[order], t_rel[order]
        self._value = value[order]
        self._key = self._group * self._period + self._t
        self._edges = self._groups = self._latched = None  # built by latched_bits()
        setups = []
        for edge in (setup_fall, setup_rise):  # indexed by the new value: 0 fell, 1 rose
            per_bit = edge or [0.0] * self.acc_width
            first = {f: v for f, v in reversed(list(zip(acc_flops, per_bit)))}
            setups.append([int(round(first[f] * FS)) for f in self._flops])
        self._setup = np.array(setups, dtype=np.int64).reshape(2, n_f)
        # Per cycle and flip-flop: settle time, settled value; start value = previous settled.
        g = self.cycles * n_f
        last = np.full(g, -1, dtype=np.int64)
        ends = np.flatnonzero(np.r_[self._group[1:] != self._group[:-1], True]) \
            if len(self._group) else np.zeros(0, dtype=np.int64)
        last[self._group[ends]] = ends  # the last event of each (cycle, flip-flop)
        has = last >= 0
        settle = np.zeros(g, dtype=np.int64)
        settle[has] = self._t[last[has]]
        val = np.full(g, -1, dtype=np.int64)
        val[has] = self._value[last[has]]
        val = val.reshape(self.cycles, n_f)
        settled = np.empty_like(val)
        prev = init.copy()
        for c in range(self.cycles):  # carry each flip-flop's value through quiet cycles
            row = val[c]
            prev = np.where(row >= 0, row, prev)
            settled[c] = prev
        self._settle_f = settle.reshape(self.cycles, n_f)
        self._settled_f = settled
        self._start_f = np.vstack([init[None, :], settled[:-1]]) if self.cycles else settled
        self.settle = self._per_bit(self._settle_f, 0) / FS
        self.settled = self._word(self._per_bit(self._settled_f, None))
        self.toggle = self._per_bit(self._settled_f != self._start_f, 0).mean(axis=0)

    def _per_bit(self, per_flop, const):
        """Per accumulator bit, from per-flip-flop columns (constants: ``const``, or the
        constant bit itself if ``None``)."""
        index = {f: j for j, f in enumerate(self._flops)}
        cols = []
        for f in self._acc_flops:
            if isinstance(f, str):
                cols.append(per_flop[:, index[f]].astype(np.int64))
            else:
                cols.append(np.full(self.cycles, f if const is None else const, dtype=np.int64))
        return np.stack(cols, axis=1)

    def _word(self, bits):
        aw = self.acc_width
        word = (bits << np.arange(aw, dtype=np.int64)).sum(axis=1)
        return np.where(bits[:, -1] == 1, word - (1 << aw), word)

    def latched_bits(self, clock):
        """``[cycle, bit]``: what the flip-flops hold at the end of each cycle of ``clock``
        ps."""
        if self._latched is not None and self._latched[0] == clock:
            return self._latched[1]
        n_f = len(self._flops)
        if not n_f:
            return self._per_bit(np.zeros((self.cycles, 0), dtype=np.int64), None)
        if self._edges is None:  # per new value (0: fell, 1: rose): sort keys and positions
            position = np.arange(len(self._key))
            self._edges = [(self._key[self._value == v], position[self._value == v])
                           for v in (0, 1)]
            self._groups = np.arange(self.cycles * n_f, dtype=np.int64)
        groups = self._groups
        best = np.full(len(groups), -1, dtype=np.int64)  # the change latched, by position
        for value, (keys, at) in enumerate(self._edges):
            if not len(keys):
                continue
            # the latest change of this kind that meets setup (every change is before the
            # simulation's period)
            limit = np.clip(int(np.floor(clock * FS)) - self._setup[value], -1,
                            self._period - 1)
            i = np.searchsorted(keys, groups * self._period + limit[groups % n_f],
                                side="right") - 1
            found = at[np.maximum(i, 0)]
            ok = (i >= 0) & (self._group[found] == groups)
            best = np.maximum(best, np.where(ok, found, -1))
        values = np.where(best >= 0, self._value[np.maximum(best, 0)], self._start_f.ravel())
        bits = self._per_bit(values.reshape(self.cycles, n_f), None)
        self._latched = (clock, bits)
        return bits

    def latched(self, clock):
        """Per cycle: the signed word latched with a ``clock`` ps period."""
        return self._word(self.latched_bits(clock))

    def errors(self, clock):
        """Per cycle: the word latched with a ``clock`` ps period minus the correct one (0
        where every bit was in time)."""
        return self.latched(clock) - self.settled

    def bit_errors(self, clock):
        """``[cycle, bit]``: whether bit ``k`` latched with a ``clock`` ps period differs from
        its settled value."""
        return self.latched_bits(clock) != self._per_bit(self._settled_f, None)

    @property
    def period(self):
        """The simulation's clock period (ps)."""
        return self._period / FS

    def requirement(self):
        """Per cycle, the shortest clock period (ps) at which every bit's last change in
        that cycle meets setup: the cycle latches the correct word at this period and any
        longer one (0 if no flip-flop changes)."""
        if not self._flops or not self.cycles:
            return np.zeros(self.cycles)
        changed = self._settled_f != self._start_f
        changed |= self._settle_f > 0  # a glitch back to the start value counts too
        need = self._settle_f + self._setup[self._settled_f, np.arange(len(self._flops))]
        return np.where(changed, need, 0).max(axis=1) / FS

    @property
    def safe_clock(self):
        """The shortest clock period (ps) at which every bit's last change meets setup: no
        error at this period or any longer one."""
        if not self._flops or not self.cycles:
            return 0.0
        return float(self.requirement().max())

    @property
    def max_settle(self):
        """The latest settle time of any bit (ps)."""
        return float(self.settle.max()) if self.settle.size else 0.0

    def save(self, path):
        """Write the simulation's events and this waveform's parameters to ``path``
        (``.npz``); :meth:`load` rebuilds it (a new table without a new simulation)."""
        np.savez_compressed(path, **self._args,
                            acc_flops=np.array([str(f) for f in self._acc_flops]),
                            flops=np.array(self._flops))

    @classmethod
    def load(cls, path):
        """The :class:`Waveform` :meth:`save` wrote to ``path``."""
        with np.load(path) as f:
            acc_flops = [int(x) if x in ("0", "1") else str(x) for x in f["acc_flops"]]
            return cls(f["t"], f["flop"], f["value"], acc_flops, [str(x) for x in f["flops"]],
                       int(f["period"]), int(f["t0"]), int(f["cycles"]),
                       f["setup_rise"].tolist() or None, f["setup_fall"].tolist() or None)
