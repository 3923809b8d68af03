"""Session: binds a graph to one array namespace and device, owns the Variables' values
there, and runs cached plans.

>>> import xpnn as xn
>>> x = xn.placeholder(name="x")
>>> w = xn.Variable([2.0], name="w")
>>> sess = xn.Session(device="cpu")
>>> sess.run(x * w, feed_dict={x: [3.0]}).tolist()
[6.0]
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from . import backend as devices
from . import fastpath, io
from .graph import (
    DEFAULT_FLOAT,
    Constant,
    Graph,
    Node,
    Placeholder,
    Variable,
    get_default_graph,
)
from .plan import Plan, _flatten, compile_plan


class OpError(ValueError):
    """An op failed while running; the message names the op and its inputs."""


class Session:
    """Runs a graph on one device. ``device="cpu"`` (NumPy), ``"cuda"``/``"cuda:N"`` (CuPy);
    ``backend=`` picks another namespace ("array_api_strict", "torch", "jax").
    ``dtype="float64"`` runs every floating value in that dtype (gradient checks use it).

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     w = xn.Variable(1.0)
    ...     step = xn.train.GradientDescentOptimizer(0.5).minimize(w * w)
    ...     sess = xn.Session()
    ...     sess.run(step)
    ...     sess.run(w).item()
    0.0
    """

    def __init__(self, graph: Graph | None = None, device=None, backend=None, dtype=None):
        self.graph = graph if graph is not None else get_default_graph()
        self.device = devices.resolve(device, backend)
        self.xp = self.device.xp
        self.dtype = None if dtype is None else devices.dtype_name(dtype)
        if self.dtype is not None:
            self.device.dtype(self.dtype)  # fails now if the backend cannot hold it (JAX x64)
        self._values: dict[Variable, object] = {}
        self._constants: dict[Constant, object] = {}
        self._plans: dict[tuple, Plan] = {}

    def __repr__(self) -> str:
        return f"<Session on {self.device} with {len(self._values)} variable values>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the Variables' values and cached plans (frees device memory)."""
        self._values.clear()
        self._constants.clear()
        self._plans.clear()

    # ------------------------------------------------------------------ values

    def _dtype_for(self, host: np.ndarray):
        name = host.dtype.name
        if self.dtype is not None and devices.is_floating(name):
            name = self.dtype
        return self.device.dtype(name)

    def _source(self, node, host):
        """The host value a leaf starts from: full precision when this Session widens floats."""
        exact = node.exact_value
        if self.dtype is not None and exact is not None and devices.is_floating(host.dtype):
            return exact
        return host

    def _leaf_value(self, node):
        if isinstance(node, Variable):
            value = self._values.get(node)
            if value is None:
                value = self._values[node] = self.device.from_host(
                    self._source(node, node.initial_value), self._dtype_for(node.initial_value),
                    copy=True,
                )
            return value
        value = self._constants.get(node)
        if value is None:
            value = self._constants[node] = self.device.from_host(
                self._source(node, node.value), self._dtype_for(node.value)
            )
        return value

    def get_value(self, variable: Variable):
        """The Variable's current value in this session (an array of its namespace)."""
        self._check_graph(variable, "get_value")
        value = self._leaf_value(variable)
        # NumPy sessions update Variables in place: never hand out the live buffer.
        return value.copy() if self.device.backend == "numpy" else value

    def set_value(self, variable: Variable, value) -> None:
        """Replace a Variable's value; shape must match, the dtype is converted.

        >>> import xpnn as xn
        >>> w = xn.Variable([0.0, 0.0]); sess = xn.Session()
        >>> sess.set_value(w, [1.0, 2.0]); sess.run(w).tolist()
        [1.0, 2.0]
        """
        self._check_graph(variable, "set_value")
        if not isinstance(variable, Variable):
            raise TypeError(f"set_value: {variable.label} is a {variable.kind}, not a Variable")
        host = devices.to_numpy(value) if not isinstance(value, np.ndarray) else value
        host = np.asarray(host)
        if host.dtype.kind not in "fiub":
            raise TypeError(
                f"set_value: Variable {variable.label} ({variable.dtype}) takes numbers, got "
                f"data of dtype {host.dtype}"
            )
        if tuple(host.shape) != variable.shape:
            raise ValueError(
                f"set_value: Variable {variable.label} has shape {variable.shape}, "
                f"the new value has shape {tuple(host.shape)}"
            )
        dtype = self._dtype_for(variable.initial_value)
        self._values[variable] = self.device.from_host(host, dtype, copy=True)

    def save(self, path) -> None:
        """Write every Variable of the graph (optimizer state too) to ``path`` (.npz, atomic).

        >>> import xpnn as xn, tempfile, os
        >>> with xn.Graph().as_default():
        ...     w = xn.Variable([1.0], name="w")
        ...     sess = xn.Session()
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> sess.save(path); sess.set_value(w, [5.0]); sess.restore(path); sess.run(w).tolist()
        [1.0]
        """
        io.save_arrays(path, {n: devices.to_numpy(self._leaf_value(v))
                              for n, v in self._named_variables().items()})

    def restore(self, path) -> None:
        """Load Variables saved by :meth:`save`; names and shapes are all checked before any
        value changes."""
        arrays = io.load_arrays(path)
        named = self._named_variables()
        io.check_shapes({n: v.shape for n, v in named.items()}, arrays, f"restore({path})")
        for name, variable in named.items():
            self.set_value(variable, arrays[name])

    def _named_variables(self) -> dict:
        named = {}
        for v in self.graph.variables:
            if v.label in named:
                raise ValueError(
                    f"two Variables are named {v.label!r}: give Variables unique names to save them"
                )
            named[v.label] = v
        return named

    def _check_graph(self, node, what):
        if not isinstance(node, Node):
            raise TypeError(f"{what}: expected a graph node, got {type(node).__name__}")
        if node.graph is not self.graph:
            raise ValueError(
                f"{what}: {node.label} belongs to another graph than this Session's; create the "
                "Session inside `with graph.as_default():` or pass Session(graph=...)"
            )

    # ------------------------------------------------------------------ feeds

    def _feed_value(self, placeholder: Placeholder, value):
        if isinstance(value, (np.ndarray, np.generic)) or not array_api_compat.is_array_api_obj(
            value
        ):
            if isinstance(value, Node):
                raise TypeError(
                    f"the feed for placeholder {placeholder.label} is a graph node "
                    f"({value.label}); feed arrays, lists or numbers"
                )
            host = np.asarray(value)
            dtype = placeholder.dtype
            if dtype is None and host.dtype.kind == "f":
                dtype = self.dtype or DEFAULT_FLOAT
            elif self.dtype is not None and dtype is not None and devices.is_floating(dtype):
                dtype = self.dtype
            if host.dtype.kind not in "fiub":
                raise TypeError(
                    f"placeholder {placeholder.label}: cannot feed data of dtype {host.dtype}"
                )
            if (dtype is not None and np.dtype(dtype).kind in "iu" and host.dtype.kind == "f"
                    and not np.array_equal(host, np.round(host))):
                raise TypeError(
                    f"placeholder {placeholder.label} holds {dtype} but was fed fractional "
                    f"{host.dtype} data: round or cast it yourself"
                )
            array = self.device.from_host(host, dtype or host.dtype)
        else:
            if not self.device.owns(value):
                raise TypeError(
                    f"placeholder {placeholder.label} was fed a {devices.describe(value)}, but "
                    f"this Session runs on {self.device.backend} device {self.device.name}: feed "
                    f"NumPy data (it is moved for you) or an array on {self.device.name}"
                )
            array = value
            want = self.dtype if self.dtype and devices.is_floating(array.dtype) else None
            want = want or placeholder.dtype
            if want is not None and devices.dtype_name(array.dtype) != want:
                array = self.xp.astype(array, self.device.dtype(want))
        self._check_shape(placeholder, tuple(array.shape))
        return array

    @staticmethod
    def _check_shape(placeholder: Placeholder, shape):
        expected = placeholder.shape
        if expected is None:
            return
        if len(expected) != len(shape) or any(
            e is not None and e != s for e, s in zip(expected, shape)
        ):
            raise ValueError(
                f"placeholder {placeholder.label} expects shape "
                f"{tuple('?' if e is None else e for e in expected)} but was fed shape {shape}"
            )

    # ------------------------------------------------------------------ plans

    def _feed_dtype(self, placeholder):
        """The NumPy dtype host data for ``placeholder`` is converted to when floating."""
        if self.dtype is not None and (placeholder.dtype is None
                                       or devices.is_floating(placeholder.dtype)):
            return np.dtype(self.dtype)
        return np.dtype(placeholder.dtype or DEFAULT_FLOAT)

    def run(self, fetches, feed_dict=None, to_numpy=False):
        """Evaluate ``fetches`` (a node, or a list/tuple/dict of nodes) with placeholders fed
        from ``feed_dict``. Returns arrays of this session's namespace (NumPy arrays with
        ``to_numpy=True``); an optimizer step fetches as None."""
        feed_dict = feed_dict or {}
        plan = self._plan(fetches, feed_dict)
        if self.device.context is None:
            out = self._execute(plan, feed_dict)
        else:  # CuPy: new arrays go to the current GPU, so make it this session's
            with self.device.context:
                out = self._execute(plan, feed_dict)
        if to_numpy:
            out = [None if v is None else devices.to_numpy(v) for v in out]
        return plan.rebuild(out)

    def _execute(self, plan: Plan, feed_dict) -> list:
        """Feed, run every step, commit the updates; the fetched values in order."""
        values = plan.template.copy()
        host_ok = self.device.backend == "numpy"
        for s, placeholder, dtype, shape in plan.feeds:
            value = feed_dict[placeholder]
            if host_ok and type(value) is np.ndarray and value.dtype == dtype:
                # A shape equal to the placeholder's or to the last one accepted needs no check.
                if shape is not None and value.shape != shape and (
                        value.shape != plan.accepted_shapes.get(s)):
                    self._check_shape(placeholder, value.shape)
                    plan.accepted_shapes[s] = value.shape
                values[s] = value
            else:
                values[s] = self._feed_value(placeholder, value)
        state = self._values
        for s, variable in plan.variables:
            value = state.get(variable)
            values[s] = value if value is not None else self._leaf_value(variable)
        step = None
        try:
            for step in plan.steps:
                fn, gather, single, out, frees, _, _ = step
                values[out] = fn(gather(values)) if single else fn(*gather(values))
                for f in frees:
                    values[f] = None
            step = None
            out = [None if s is None else values[s] for s in plan.fetch_slots]
            if plan.copies:  # fetched before the in-place update below, and not live after it
                out = [v.copy() if s in plan.copies else v for v, s in zip(out, plan.fetch_slots)]
            if plan.updates:
                self._commit(plan, values)
        except OpError:
            raise
        except Exception as exc:
            if step is None:
                raise
            raise self._op_error(step, values, exc) from exc
        return out

    def _plan(self, fetches, feed_dict) -> Plan:
        """The cached plan for these fetches and fed placeholders (compiled on first use)."""
        nodes = rebuild = None
        try:  # hashing the fetch structure itself avoids flattening it on every run
            key = (fetches if isinstance(fetches, Node) else (
                type(fetches), tuple(fetches.items() if isinstance(fetches, dict) else fetches)),
                frozenset(feed_dict))
            plan = self._plans.get(key)
        except TypeError:  # unhashable (nested lists): key on the flat node tuple instead
            nodes, rebuild = _flatten(fetches)
            key = (tuple(nodes), frozenset(feed_dict))
            plan = self._plans.get(key)
        if plan is None:
            if nodes is None:
                nodes, rebuild = _flatten(fetches)
            for node in feed_dict:
                self._check_feed_key(node)
            plan = self._plans[key] = compile_plan(self, nodes, rebuild, feed_dict)
        return plan

    def _commit(self, plan: Plan, values) -> None:
        """Apply the run's Variable updates, after every other step has succeeded. Every
        check comes before the first write, so a failure changes nothing."""
        calls = [(op, ins, owned, gather(values), deferred)
                 for op, ins, owned, gather, deferred in plan.updates]
        for op, ins, _, args, _ in calls:
            check = getattr(op, "shape_problem", None)
            problem = check(args) if check is not None else None
            if problem:
                raise self._op_error((None, None, None, None, (), ins, op), values,
                                     ValueError(problem))
        if plan.inplace_updates:
            for op, _, owned, args, deferred in calls:
                fastpath.update_inplace(op, args, owned, deferred)
            return
        new = []
        for op, ins, _, args, _ in calls:
            try:
                result = op.forward(self.xp, *args)
            except Exception as exc:
                raise self._op_error((None, None, None, None, (), ins, op), values, exc) from exc
            if self.device.backend == "numpy":  # later updates write Variables in place
                inputs = {id(a) for a in args}
                result = [_own(value, inputs) for value in result]
            new.extend(zip(op.targets, result))
        for variable, value in new:  # all computed: now write
            self._values[variable] = value

    def _check_feed_key(self, node):
        if not isinstance(node, Node):
            raise TypeError(
                f"feed_dict keys must be placeholders, got {type(node).__name__} {node!r}"
            )
        self._check_graph(node, "feed_dict")
        if not isinstance(node, Placeholder):
            raise TypeError(
                f"feed_dict key {node.label} is a {node.kind}, not a placeholder: only "
                "placeholders can be fed (use Session.set_value to change a Variable)"
            )

    def _op_error(self, step, values, exc) -> Exception:
        ins, op = step[5], step[6]
        if op is None:
            return exc
        parts = []
        for position, (node, s) in enumerate(zip(op.inputs, ins)):
            v = values[s]
            desc = "freed" if v is None else (
                f"shape {tuple(v.shape)} {devices.dtype_name(v.dtype)} on {self.device.name}"
            )
            parts.append(f"  input {position} {node.label}: {desc}")
        return OpError(
            f"{op.label} ({op.type}) failed: {exc}\n" + "\n".join(parts)
            + "\nno Variable was changed by this run"
        )


def _own(value, input_ids):
    """A new Variable value the Session may write in place: a copy when it is read-only (a
    value kept between runs), a view, or one of the update's inputs (a fed array, a
    constant, another Variable). Fresh results of arithmetic pass as they are, except 0-d
    ones, which NumPy gives as scalars: they become 0-d arrays, which can be written."""
    if isinstance(value, np.generic):
        return np.array(value)
    if isinstance(value, np.ndarray) and (
            not value.flags.writeable or value.base is not None or id(value) in input_ids):
        return value.copy()
    return value
