"""A small reader for the Liberty files this project uses (OSU 0.18 um, see :mod:`synth.flow`):
cell areas, leakage, pin capacitances, boolean functions, flip-flops and internal-power tables.

Units are the library's: area in um^2, capacitance in pF, leakage in nW, internal energy in pJ
(pF x V^2), time in ns. :func:`parse_function` reads Liberty boolean expressions (``!`` and
postfix ``'`` for NOT, ``*``, ``&`` or a space for AND, ``+`` or ``|`` for OR, ``^`` for XOR,
parentheses, ``0``/``1``); precedence is NOT, XOR, AND, OR, as the Liberty reference states.

Only what :mod:`synth.power` needs is interpreted; other groups are parsed and ignored.
"""
import bisect
import dataclasses
import pathlib
import re

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.\-+\[\]]+|[{}();,:]')


# ---------------------------------------------------------------------------------------------
# The generic group/attribute syntax.

@dataclasses.dataclass
class Group:
    """One Liberty group: ``kind (args) { attrs; groups }``."""

    kind: str
    args: list
    attrs: dict
    groups: list

    def find(self, kind):
        return [g for g in self.groups if g.kind == kind]


def _tokens(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = text.replace("\\\n", " ")
    for tok in _TOKEN.findall(text):
        yield tok


def _unquote(tok):
    return tok[1:-1] if tok.startswith('"') else tok


def parse_groups(text):
    """Parse Liberty ``text`` into its top :class:`Group` (the ``library`` group)."""
    toks = list(_tokens(text))
    pos = 0

    def statement(parent):
        nonlocal pos
        name = toks[pos]
        pos += 1
        if toks[pos] == ":":  # simple attribute: name : value ;
            value = toks[pos + 1]
            pos += 2
            while toks[pos] != ";" and toks[pos] != "}":  # e.g. an unquoted expression
                value += " " + toks[pos]
                pos += 1
            if toks[pos] == ";":
                pos += 1
            parent.attrs[name] = _unquote(value)
            return
        if toks[pos] != "(":
            raise ValueError(f"Liberty syntax: expected ':' or '(' after {name!r}")
        pos += 1
        args = []
        while toks[pos] != ")":
            if toks[pos] != ",":
                args.append(_unquote(toks[pos]))
            pos += 1
        pos += 1
        if toks[pos] == "{":  # group
            pos += 1
            group = Group(name, args, {}, [])
            while toks[pos] != "}":
                statement(group)
            pos += 1
            parent.groups.append(group)
        else:  # complex attribute: name (args) ;
            if toks[pos] == ";":
                pos += 1
            parent.attrs[name] = args

    root = Group("", [], {}, [])
    while pos < len(toks):
        statement(root)
    if not root.groups:
        raise ValueError("Liberty text holds no group")
    return root.groups[0]


# ---------------------------------------------------------------------------------------------
# Boolean functions.

def parse_function(text):
    """Parse a Liberty boolean function into a nested tuple: ``("var", name)``,
    ``("const", 0|1)``, ``("not", x)``, ``("and"|"or"|"xor", x, y)``.

    >>> parse_function("(!(A B))")
    ('not', ('and', ('var', 'A'), ('var', 'B')))
    """
    toks = re.findall(r"[A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[!'*&+|^()]", text)
    if "".join(toks) != re.sub(r"\s+", "", text):
        raise ValueError(f"cannot parse Liberty function {text!r}")
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary():
        tok = peek()
        if tok is None:
            raise ValueError(f"Liberty function {text!r} ends early")
        if tok == "!":
            take()
            node = ("not", primary())
        elif tok == "(":
            take()
            node = expr_or()
            if peek() != ")":
                raise ValueError(f"unbalanced parentheses in {text!r}")
            take()
        elif tok in ("0", "1"):
            node = ("const", int(take()))
        elif re.match(r"[A-Za-z_]", tok):
            node = ("var", take())
        else:
            raise ValueError(f"unexpected {tok!r} in Liberty function {text!r}")
        while peek() == "'":
            take()
            node = ("not", node)
        return node

    def expr_xor():
        node = primary()
        while peek() == "^":
            take()
            node = ("xor", node, primary())
        return node

    def starts_operand(tok):
        return tok is not None and (tok in ("!", "(", "0", "1") or re.match(r"[A-Za-z_]", tok))

    def expr_and():
        node = expr_xor()
        while peek() in ("*", "&") or starts_operand(peek()):
            if peek() in ("*", "&"):
                take()
            node = ("and", node, expr_xor())
        return node

    def expr_or():
        node = expr_and()
        while peek() in ("+", "|"):
            take()
            node = ("or", node, expr_and())
        return node

    tree = expr_or()
    if pos != len(toks):
        raise ValueError(f"trailing {toks[pos]!r} in Liberty function {text!r}")
    return tree


def variables(tree):
    """The variable names of a parsed function, in first-appearance order."""
    if tree[0] == "var":
        return [tree[1]]
    if tree[0] == "const":
        return []
    names = []
    for sub in tree[1:]:
        names += [n for n in variables(sub) if n not in names]
    return names


def evaluate(tree, env, ones):
    """Evaluate a parsed function bitwise: ``env`` maps variable names to integers or NumPy
    arrays; ``ones`` is the all-ones value of that type (the constant 1, and NOT's mask)."""
    op = tree[0]
    if op == "var":
        return env[tree[1]]
    if op == "const":
        return ones if tree[1] else ones ^ ones
    if op == "not":
        return evaluate(tree[1], env, ones) ^ ones
    a, b = evaluate(tree[1], env, ones), evaluate(tree[2], env, ones)
    return a & b if op == "and" else a | b if op == "or" else a ^ b


# ---------------------------------------------------------------------------------------------
# Tables.

@dataclasses.dataclass(frozen=True)
class Table:
    """A 1-D or 2-D lookup table; ``variables`` name the axes (from the template)."""

    variables: tuple
    index: tuple
    values: tuple

    def lookup(self, **point):
        """Interpolate (bi)linearly at ``point`` (keyword per axis variable), extrapolating
        linearly outside the table, as timing tools do."""
        def axis(idx, x):
            if len(idx) == 1:
                return 0, 0, 0.0
            i = min(max(bisect.bisect_right(idx, x) - 1, 0), len(idx) - 2)
            return i, i + 1, (x - idx[i]) / (idx[i + 1] - idx[i])

        coords = [axis(self.index[k], point[v]) for k, v in enumerate(self.variables)]
        if len(coords) == 1:
            (i, j, t), = coords
            return self.values[i] * (1 - t) + self.values[j] * t
        (i0, i1, t), (j0, j1, u) = coords
        v = self.values
        return ((v[i0][j0] * (1 - u) + v[i0][j1] * u) * (1 - t)
                + (v[i1][j0] * (1 - u) + v[i1][j1] * u) * t)


def _floats(s):
    return tuple(float(x) for x in s.replace(",", " ").split())


def _table(group, templates):
    variables = templates.get(group.args[0] if group.args else "scalar", ())
    n = len(variables)
    index = tuple(_floats(group.attrs[f"index_{k + 1}"][0]) for k in range(n))
    rows = [_floats(r) for r in group.attrs["values"]]
    if n == 0:
        return Table((), (), rows[0][0])
    values = rows[0] if n == 1 else tuple(rows)
    return Table(tuple(variables), index, values)


# ---------------------------------------------------------------------------------------------
# Cells.

@dataclasses.dataclass(frozen=True)
class Power:
    """Internal energy (pJ) per output rise and fall, optionally tied to one input pin."""

    related_pin: str
    rise: Table
    fall: Table


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str
    direction: str
    capacitance: float
    function: str = None
    power: tuple = ()
    clock: bool = False

    @property
    def tree(self):
        return parse_function(self.function) if self.function else None


@dataclasses.dataclass(frozen=True)
class Flop:
    """A rising-edge flip-flop: ``state`` takes ``next_state`` when ``clock`` rises."""

    state: str
    next_state: str
    clock: str


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    area: float
    leakage_nw: float
    pins: dict
    flop: Flop = None
    #: Why :mod:`synth.netsim` cannot simulate this cell (``None`` if it can).
    unsupported: str = None

    @property
    def inputs(self):
        return [p for p in self.pins.values() if p.direction == "input"]

    @property
    def outputs(self):
        return [p for p in self.pins.values() if p.direction == "output"]


@dataclasses.dataclass(frozen=True)
class Library:
    name: str
    voltage: float
    cells: dict

    def __getitem__(self, name):
        try:
            return self.cells[name]
        except KeyError:
            raise KeyError(f"cell {name!r} is not in Liberty library {self.name}") from None


def _cell(group, templates):
    pins = {}
    for p in group.find("pin"):
        power = []
        for ip in p.find("internal_power"):
            tables = {t.kind: _table(t, templates) for t in ip.groups}
            if "rise_power" in tables and "fall_power" in tables:
                power.append(Power(ip.attrs.get("related_pin"), tables["rise_power"],
                                   tables["fall_power"]))
        pins[p.args[0]] = Pin(p.args[0], p.attrs["direction"],
                              float(p.attrs.get("capacitance", 0.0)), p.attrs.get("function"),
                              tuple(power), p.attrs.get("clock") == "true")
    flop, unsupported = None, None
    for ff in group.find("ff"):
        clocked = ff.attrs.get("clocked_on", "")
        if "clear" in ff.attrs or "preset" in ff.attrs:
            unsupported = "a flip-flop with asynchronous clear/preset"
        elif not re.fullmatch(r"[A-Za-z_]\w*", clocked):
            unsupported = f"a flip-flop clocked on {clocked!r} (only rising edges are simulated)"
        else:
            flop = Flop(ff.args[0], ff.attrs["next_state"], clocked)
    if group.find("latch"):
        unsupported = "a latch"
    if any("three_state" in p.attrs for p in group.find("pin")):
        unsupported = "a tri-state output"
    return Cell(group.args[0], float(group.attrs.get("area", 0.0)),
                float(group.attrs.get("cell_leakage_power", 0.0)), pins,
                None if unsupported else flop, unsupported)


def parse(text):
    """Parse Liberty ``text`` into a :class:`Library`."""
    lib = parse_groups(text)
    templates = {g.args[0]: [g.attrs[f"variable_{k}"] for k in (1, 2, 3)
                             if f"variable_{k}" in g.attrs]
                 for g in lib.groups if g.kind in ("lu_table_template", "power_lut_template")}
    units = lib.attrs.get("leakage_power_unit", "1nW")
    if units != "1nW" or lib.attrs.get("capacitive_load_unit") != ["1", "pf"]:
        raise ValueError(f"Liberty units not handled: leakage {units}, capacitance "
                         f"{lib.attrs.get('capacitive_load_unit')} (want 1nW, 1pf)")
    cells = {g.args[0]: _cell(g, templates) for g in lib.find("cell")}
    return Library(lib.args[0], float(lib.attrs.get("nom_voltage", 0.0)), cells)


def load(path):
    """Read the Liberty file at ``path``."""
    return parse(pathlib.Path(path).read_text())
