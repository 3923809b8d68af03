"""CUDA source from a formula (``formulas.py``): ``trace`` calls it with ``Symbol``s for its
operands and ``C`` for its namespace, which record one statement per operation; the
``Kernel`` prints them as the body of a ``cupy.ElementwiseKernel`` (or, inlined, as the map
of a ``cupy.ReductionKernel``). Each operation's C text sits in ``OPS`` beside a NumPy model
of what that C computes (``maximum`` keeps NaN as NumPy's does, ``where`` is a select), and
``run`` executes the statements with the models: the stand-in of ``reference.py`` runs the
very statements the GPU would, and the tests compare them with the formula itself.

Operands are typed as the kernel declares them: floating arrays and Python floats are
``T`` (numbers become scalar arguments ``c0, c1, ...`` in the arrays' dtype, so no C
literal is read as a double), integer ones ``I``, masks ``bool``.

>>> from xpnn.devices.cupy import formulas, source
>>> kernel = source.trace(formulas.sigmoid_grad, (("float", True), ("float", True)))
>>> kernel.in_params(), kernel.out_params()
('T g, T y, T c0', 'T out0')
>>> print(kernel.body())
T t0 = c0 - y;
T t1 = y * t0;
T t2 = g * t1;
out0 = t2;
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

CTYPES = {"float": "T", "int": "I", "bool": "bool"}
# Names an operand may not have: CuPy's loop index and size, C keywords a formula might
# pick (and, checked when traced, the names the kernel gives its temporaries and numbers).
RESERVED = {"i", "n", "do", "if", "for", "int", "float", "double", "char", "long", "short",
            "const", "return", "while", "case", "default", "auto", "bool", "T", "I"}


def _logical_or(xp, a, b):
    return xp.logical_or(a, b)


# op -> (C text of the operands {0}, {1}, ..., NumPy model(xp, T, *operands))
OPS = {
    "add": ("{0} + {1}", lambda xp, t, a, b: a + b),
    "sub": ("{0} - {1}", lambda xp, t, a, b: a - b),
    "mul": ("{0} * {1}", lambda xp, t, a, b: a * b),
    "div": ("{0} / {1}", lambda xp, t, a, b: a / b),
    "neg": ("-{0}", lambda xp, t, a: -a),
    "gt": ("{0} > {1}", lambda xp, t, a, b: a > b),
    "ge": ("{0} >= {1}", lambda xp, t, a, b: a >= b),
    "lt": ("{0} < {1}", lambda xp, t, a, b: a < b),
    "le": ("{0} <= {1}", lambda xp, t, a, b: a <= b),
    "eq": ("{0} == {1}", lambda xp, t, a, b: a == b),
    "ne": ("{0} != {1}", lambda xp, t, a, b: a != b),
    "and": ("{0} && {1}", lambda xp, t, a, b: xp.logical_and(a, b)),
    "exp": ("exp({0})", lambda xp, t, a: xp.exp(a)),
    "log": ("log({0})", lambda xp, t, a: xp.log(a)),
    "sqrt": ("sqrt({0})", lambda xp, t, a: xp.sqrt(a)),
    "tanh": ("tanh({0})", lambda xp, t, a: xp.tanh(a)),
    "isfinite": ("isfinite({0})", lambda xp, t, a: xp.isfinite(a)),
    # NumPy's maximum: the first operand where it is larger or NaN, else the second (so a
    # NaN in either comes out, and maximum(-0.0, 0.0) is 0.0)
    "maximum": ("({0} > {1} || {0} != {0}) ? {0} : {1}",
                lambda xp, t, a, b: xp.where(_logical_or(xp, a > b, a != a), a, b)),
    "where": ("{0} ? {1} : {2}", lambda xp, t, c, a, b: xp.where(c, a, b)),
    "cast": ("(T)({0})", lambda xp, t, a: xp.astype(a, t)),
}
_ARITHMETIC = {"add", "sub", "mul", "div"}
_FLOAT_ONLY = {"exp", "log", "sqrt", "tanh", "isfinite"}
_BOOL = {"gt", "ge", "lt", "le", "eq", "ne", "and", "isfinite"}


@dataclass(frozen=True)
class Statement:
    name: str
    kind: str  # "float", "int" or "bool"
    op: str
    args: tuple  # operand names, or Python ints (C literals)


class Recorder:
    """The statements and number arguments of one trace."""

    def __init__(self):
        self.statements, self.constants = [], {}

    def operand(self, value) -> tuple:
        """(name or literal, kind) of an operand."""
        if isinstance(value, Symbol):
            return value.name, value.kind
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"a formula operand must be a symbol or a number, not {value!r}")
        if isinstance(value, int):
            return value, "literal"
        key = repr(value)  # nan == nan is False: key numbers by their text
        if key not in self.constants:
            self.constants[key] = (f"c{len(self.constants)}", value)
        return self.constants[key][0], "float"

    def apply(self, op, *values) -> Symbol:
        operands = [self.operand(v) for v in values]
        kind = _result_kind(op, [k for _, k in operands])
        name = f"t{len(self.statements)}"
        self.statements.append(Statement(name, kind, op, tuple(o for o, _ in operands)))
        return Symbol(self, name, kind)


def _result_kind(op, kinds) -> str:
    if op in _BOOL:
        if op in _FLOAT_ONLY and kinds != ["float"]:
            raise TypeError(f"{op} takes a floating operand, got {kinds}")
        return "bool"
    if op == "cast":
        return "float"
    if op in _FLOAT_ONLY:
        if kinds != ["float"]:
            raise TypeError(f"{op} takes a floating operand, got {kinds}")
        return "float"
    if op == "where" and kinds[0] != "bool":
        raise TypeError("where takes a mask first")
    # an integer literal takes the other operand's kind, as a Python int does in NumPy
    values = [k for k in (kinds[1:] if op == "where" else kinds) if k != "literal"]
    if "bool" in values:
        raise TypeError(f"{op} of a mask: cast it first (xp.astype)")
    if op in _ARITHMETIC and "float" in values and "int" in values:
        # an integer array in float arithmetic: NumPy would promote to float64
        raise TypeError(f"{op} mixes integer and floating operands: cast one first")
    return "float" if "float" in values else "int"


class Symbol:
    """An operand of a traced formula: operators record statements."""

    __slots__ = ("rec", "name", "kind")

    def __init__(self, rec, name, kind):
        self.rec, self.name, self.kind = rec, name, kind

    @property
    def dtype(self) -> str:  # what xp.astype(x, y.dtype) is given
        return self.kind

    def __bool__(self):
        raise TypeError("a formula cannot branch on its operands' values: use xp.where")

    def __neg__(self):
        return self.rec.apply("neg", self)


def _binary(op, reflected=False):
    def method(self, other):
        return self.rec.apply(op, *((other, self) if reflected else (self, other)))

    return method


for _op, _dunder in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("div", "truediv")):
    setattr(Symbol, f"__{_dunder}__", _binary(_op))
    setattr(Symbol, f"__r{_dunder}__", _binary(_op, reflected=True))
for _op in ("gt", "ge", "lt", "le", "eq", "ne"):
    setattr(Symbol, f"__{_op}__", _binary(_op))
Symbol.__hash__ = None
del _op, _dunder


class _Namespace:
    """What a formula is given for ``xp`` while it is traced."""

    @staticmethod
    def _rec(*values):
        return next(v.rec for v in values if isinstance(v, Symbol))

    def __getattr__(self, name):
        if name not in ("exp", "log", "sqrt", "tanh", "isfinite"):
            raise AttributeError(f"formulas may not use xp.{name}")
        return lambda x: x.rec.apply(name, x)

    def maximum(self, a, b):
        return self._rec(a, b).apply("maximum", a, b)

    def where(self, condition, a, b):
        return self._rec(condition, a, b).apply("where", condition, a, b)

    def logical_and(self, a, b):
        return self._rec(a, b).apply("and", a, b)

    def astype(self, x, kind):
        if kind != "float":
            raise TypeError("formulas cast to the floating dtype only (x.astype(y.dtype))")
        return x.rec.apply("cast", x)


C = _Namespace()


@dataclass(frozen=True)
class Kernel:
    """A traced formula: its parameters (name, kind, array or not), the ones it writes in
    place (its first ``writes``), its number arguments, statements and result names."""

    name: str
    params: tuple  # (name, kind, is_array)
    writes: int
    constants: tuple  # (name, value)
    statements: tuple
    results: tuple

    def in_params(self) -> str:
        read = [f"{CTYPES[k]} {n}" for n, k, _ in self.params[self.writes:]]
        return ", ".join(read + [f"T {name}" for name, _ in self.constants])

    def out_params(self) -> str:
        if self.writes:
            return ", ".join(f"T {n}" for n, _, _ in self.params[: self.writes])
        return ", ".join(f"T out{k}" for k in range(len(self.results)))

    def outputs(self) -> list:
        if self.writes:
            return [n for n, _, _ in self.params[: self.writes]]
        return [f"out{k}" for k in range(len(self.results))]

    def body(self) -> str:
        """The ElementwiseKernel's operation: temporaries, then the outputs."""
        lines = [f"{CTYPES[s.kind]} {s.name} = {_text(s)};" for s in self.statements]
        lines += [f"{out} = {r};" for out, r in zip(self.outputs(), self.results)]
        return "\n".join(lines)

    def map_expr(self) -> str:
        """The one result as a single C expression (a ReductionKernel's map)."""
        (result,) = self.results
        inline = {}
        for s in self.statements:
            inline[s.name] = "(" + _text(s, inline) + ")"
        return inline.get(result, result)

    def arguments(self, args) -> list:
        """The call's arguments, as ``cupy`` takes them: inputs, numbers, then outputs."""
        written = list(args[: self.writes])
        return list(args[self.writes:]) + [v for _, v in self.constants] + written


def _text(statement, inline=None) -> str:
    inline = inline or {}
    names = [inline.get(a, a) if isinstance(a, str) else str(a) for a in statement.args]
    return OPS[statement.op][0].format(*names)


def kind_of(value) -> tuple[str, bool]:
    """(kind, is_array) of a kernel argument: an array (anything with a dtype: NumPy and
    CuPy arrays, NumPy scalars) or a Python number."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return {"f": "float", "b": "bool"}.get(dtype.kind, "int"), True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a kernel argument must be an array or a number, not {value!r}")
    return ("float" if isinstance(value, float) else "int"), False


def parameters(formula) -> list[str]:
    """The operand names of a formula (after its namespace)."""
    names = getattr(formula, "params", None)
    if names is None:
        names = list(inspect.signature(formula).parameters)[1:]
    return list(names)


def _check_names(formula, names, taken) -> None:
    if taken:
        raise TypeError(f"{formula.__name__}: operand names {taken} are taken in the kernel's "
                        "C (CuPy's own, a C keyword, or the kernel's temporaries, numbers and "
                        f"outputs): rename them; its operands are {names}")


def trace(formula, kinds, writes=0) -> Kernel:
    """The kernel of ``formula`` for operands of ``kinds`` ((kind, is_array) pairs, as
    ``kind_of`` tells); ``writes``: its first operands are the outputs, written in place."""
    rec = Recorder()
    names = parameters(formula)
    if len(names) != len(kinds):
        raise TypeError(f"{formula.__name__} takes {len(names)} operands, got {len(kinds)}")
    _check_names(formula, names, [n for n in names if n in RESERVED or n.startswith("_")])
    params = tuple((n, kind, is_array) for n, (kind, is_array) in zip(names, kinds))
    result = formula(C, *[Symbol(rec, n, kind) for n, kind, _ in params])
    results = result if isinstance(result, tuple) else (result,)
    for r in results:
        if not isinstance(r, Symbol) or r.kind != "float":
            raise TypeError(f"{formula.__name__} must return floating symbols, got {r!r}")
    if writes and len(results) != writes:
        raise TypeError(f"{formula.__name__} writes {writes} operands but returns "
                        f"{len(results)} values")
    constants = tuple(rec.constants.values())
    made = {s.name for s in rec.statements} | {c for c, _ in constants} | {
        f"out{k}" for k in range(len(results))}
    _check_names(formula, names, [n for n in names if n in made])
    return Kernel(f"xpnn_{formula.__name__}"[:60], params, writes, constants,
                  tuple(rec.statements), tuple(r.name for r in results))


def run(kernel, xp, args, dtype, index_dtype=None) -> list:
    """The kernel's results computed by the NumPy models of its statements, on ``args`` of
    namespace ``xp``. Numbers are taken in ``dtype``, the T of the call, and integers in
    ``index_dtype``, its I, as CuPy does: a number the type cannot hold raises
    OverflowError there (CuPy >= 13), so it does here."""
    env = {}
    for (name, kind, is_array), value in zip(kernel.params, args):
        typed = {"float": dtype, "int": index_dtype}.get(kind)
        env[name] = value if is_array or typed is None else xp.asarray(value, dtype=typed)
    for name, value in kernel.constants:
        env[name] = xp.asarray(value, dtype=dtype)
    for s in kernel.statements:
        operands = [env[a] if isinstance(a, str) else a for a in s.args]
        env[s.name] = OPS[s.op][1](xp, dtype, *operands)
    return [env[r] for r in kernel.results]
