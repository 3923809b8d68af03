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

import math
import os
import threading
import warnings

import array_api_compat
import numpy as np

from . import devices, dtypes, io, ops
from . import precision as mixed
from .executor import Executor
from .graph import (
    Constant,
    Graph,
    Node,
    Placeholder,
    Variable,
    get_default_graph,
)
from .host import to_numpy as host_copy
from .plan import Plan, StepFailed, compile_plan, flatten


class OpError(ValueError):
    """An op failed while running; the message names the op and its inputs."""


class NumericsError(OpError):
    """A value held NaN or infinity where it was checked: by ``check_numerics``, or at every
    op when the Session was made with ``check_numerics=True``."""


def _passes(passes, jit, device) -> bool:
    """``Session(passes=)``: the argument (or its old name ``jit``), else ``$XPNN_PASSES``
    and the device's old variable, each off at "0"."""
    if jit is not None:
        warnings.warn("Session(jit=...) is deprecated: use Session(passes=...)",
                      DeprecationWarning, stacklevel=3)
        if passes is not None and bool(passes) != bool(jit):
            raise ValueError(f"Session(passes={passes!r}, jit={jit!r}): jit is the old name "
                             f"of passes; give passes only")
        passes = jit if passes is None else passes
    if passes is not None:
        return bool(passes)
    old = device.old_switch
    if old is not None and old in os.environ:
        warnings.warn(f"${old} is deprecated: use $XPNN_PASSES (or Session(passes=...))",
                      DeprecationWarning, stacklevel=3)
    names = ("XPNN_PASSES",) if old is None else ("XPNN_PASSES", old)
    return all(os.environ.get(name, "1").strip() != "0" for name in names)


class Session:
    """Runs a graph on one device. ``device="cpu"`` (NumPy), ``"cuda"``/``"cuda:N"`` (CuPy);
    ``backend=`` picks another namespace ("array_api_strict", "torch", "jax").
    ``dtype="float64"`` runs every floating value in that dtype (gradient checks use it).
    ``seed`` seeds the generator that random ops without a seed of their own (dropout)
    draw from; ``check_numerics`` checks every value a run makes (see the property).
    ``passes=False`` (or ``$XPNN_PASSES=0``) runs every device's portable plan, the
    reference its passes are tested against: no NumPy, torch or CuPy kernels, no
    ``jax.jit`` (every op runs eagerly). ``jit=`` is its deprecated old name; so are
    ``$XPNN_JIT``, ``$XPNN_TORCH_PASSES`` and ``$XPNN_CUPY_PASSES`` (each still "0": that
    device's passes off). ``precision="mixed_float16"`` (or ``"mixed_bfloat16"``) keeps the
    Variables in float32 and computes in the half dtype (``xpnn.precision``).

    A Session may be used from several threads: its runs (and ``get_value``,
    ``set_value``, ``save``, ``restore``, ``close``) take one lock, so they happen one at a
    time, each whole, as TF1's ``Session.run`` is thread-safe.

    >>> import xpnn as xn
    >>> with xn.Graph().as_default():
    ...     w = xn.Variable(1.0)
    ...     step = xn.train.GradientDescentOptimizer(0.5).minimize(w * w)
    ...     sess = xn.Session()
    ...     sess.run(step)
    ...     sess.run(w).item()
    0.0
    """

    def __init__(self, graph: Graph | None = None, device=None, backend=None, dtype=None,
                 check_numerics=False, seed=None, jit=None, passes=None, precision=None):
        self.graph = graph if graph is not None else get_default_graph()
        self.device = devices.resolve(device, backend)
        self.xp = self.device.xp
        self.dtype = None if dtype is None else dtypes.dtype_name(dtype)
        if precision is not None and dtype is not None:
            raise ValueError(f"Session(dtype={self.dtype!r}, precision={precision!r}): give one; "
                             "a precision policy keeps the Variables in float32")
        self.compute_dtype = mixed.half_dtype(precision, self.device)
        self.precision = precision
        if self.dtype is not None and not dtypes.is_floating(self.dtype):
            raise ValueError(f"Session(dtype={self.dtype!r}): the Session's dtype sets the "
                             f"floating values' type; use one of {sorted(dtypes.FLOAT_DTYPES)}")
        if self.dtype is not None:
            self.device.dtype(self.dtype)  # fails now if the backend cannot hold it (JAX x64)
        self._values: dict[Variable, object] = {}
        self._constants: dict[Constant, object] = {}
        self._executors: dict[tuple, Executor] = {}  # the plan cache: each plan's executor
        self._last = None  # the last run's fetches and fed keys, and its executor (run)
        self._closed = False
        self.check_numerics = check_numerics
        self._random = np.random.Generator(np.random.PCG64(seed))
        self._streams: dict = {}  # a seeded random op -> its generator in this Session
        self.passes = _passes(passes, jit, self.device)
        self._lock = threading.RLock()  # runs read and write shared state: one at a time

    def draw(self, op, shape, dtype, on_host=False):
        """A random op's values for this run (a dropout mask, ``xn.random_normal``...):
        ``op.sample(generator, shape)`` drawn on the host, from the Session's generator
        (seeded by ``Session(seed=...)``), or from the op's own stream where it has a
        ``seed``, which each Session starts anew; cast to ``dtype`` and moved to the device.
        So the same seeds give the same draws on every backend. ``on_host=True`` leaves
        them on the host (a compiled plan's argument)."""
        generator = self._random if op.seed is None else self._streams.get(op)
        if generator is None:
            generator = self._streams[op] = np.random.Generator(np.random.PCG64(op.seed))
        host = op.sample(generator, tuple(shape))
        dtype = self.device.dtype(dtype)  # refused here where the device cannot hold it
        if on_host:
            return host.astype(dtypes.dtype_name(dtype), copy=False)
        return self.device.from_host(host, dtype)

    @property
    def check_numerics(self) -> bool:
        """Whether every floating value a run makes (each op's result and each new Variable
        value) is checked for NaN and infinity: a run that makes one fails with
        :class:`NumericsError` naming the op and its inputs, and changes no Variable. It
        costs a check per op (and a device sync per op on a GPU); updates are then computed
        into new arrays before any is written."""
        return self._check_numerics

    @check_numerics.setter
    def check_numerics(self, on: bool) -> None:
        self._check_numerics = bool(on)
        self._executors.clear()  # plans are compiled with or without the checks
        self._last = None

    @property
    def _plans(self) -> dict:
        """The cached plans, by key (each plan's executor holds it)."""
        return {key: executor.plan for key, executor in self._executors.items()}

    def __repr__(self) -> str:
        return f"<Session on {self.device} with {len(self._values)} variable values>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the Variables' values and cached plans (frees device memory); the Session
        then refuses to run."""
        with self._lock:
            self._values.clear()
            self._constants.clear()
            self._executors.clear()
            self._last = None
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                "this Session is closed (its Variables' values were dropped): create a new "
                "Session, and restore a checkpoint into it to continue"
            )

    # ------------------------------------------------------------------ values

    def _dtype_for(self, host: np.ndarray):
        name = host.dtype.name
        if self.dtype is not None and dtypes.is_floating(name):
            name = self.dtype
        return self.device.dtype(name)

    def _source(self, node, host):
        """The host value a leaf starts from: full precision when this Session widens floats."""
        exact = node.exact_value
        if self.dtype is not None and exact is not None and dtypes.is_floating(host.dtype):
            return exact
        return host

    def _leaf_value(self, node):
        self._check_open()
        if isinstance(node, Variable):
            value = self._values.get(node)
            if value is None:
                try:
                    value = self.device.from_host(self._source(node, node.initial_value),
                                                  self._dtype_for(node.initial_value), copy=True)
                except RuntimeError as exc:  # a dtype the device cannot hold (JAX x64)
                    raise RuntimeError(f"Variable {node.label}: {exc}") from None
                self._values[node] = value
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
        with self._lock:  # a run may be donating the buffer (JAX)
            return self.device.hand_out(self._leaf_value(variable))

    def set_value(self, variable: Variable, value) -> None:
        """Replace a Variable's value; shape must match, the dtype is converted.

        >>> import xpnn as xn
        >>> w = xn.Variable([0.0, 0.0]); sess = xn.Session()
        >>> sess.set_value(w, [1.0, 2.0]); sess.run(w).tolist()
        [1.0, 2.0]
        """
        self._check_open()
        value = self._new_value(variable, value, "set_value")
        with self._lock:
            self._values[variable] = value

    def _new_value(self, variable, value, what):
        """``value`` as ``variable``'s new array on this device, checked as a feed is (a
        fraction, a non-finite number or an integer out of range for an integer Variable is
        refused); ``what`` starts the messages. Changes nothing."""
        self._check_graph(variable, what)
        if not isinstance(variable, Variable):
            raise TypeError(f"{what}: {variable.label} is a {variable.kind}, not a Variable")
        host = host_copy(value) if not isinstance(value, np.ndarray) else value
        host = np.asarray(host)
        if host.dtype.kind not in "fiub":
            raise TypeError(
                f"{what}: Variable {variable.label} ({variable.dtype}) takes numbers, got "
                f"data of dtype {host.dtype}"
            )
        if tuple(host.shape) != variable.shape:
            raise ValueError(
                f"{what}: Variable {variable.label} has shape {variable.shape}, "
                f"the new value has shape {tuple(host.shape)}"
            )
        dtype = self._dtype_for(variable.initial_value)
        check_values(f"{what}: Variable {variable.label}", _HOST, host, host.dtype.name,
                     dtypes.dtype_name(dtype), fed="was given", kind="Variable")
        return self.device.from_host(host, dtype, copy=True)

    def save(self, path, var_list=None) -> None:
        """Write Variables to ``path`` (.npz, atomic): all of the graph's (optimizer state
        too), or only ``var_list``, as TF1's ``Saver(var_list)``: a list of Variables (each
        saved under its name) or a dict ``{name in the file: Variable}``. A ``path`` not
        ending in ``.npz`` (any case: ``m.NPZ`` is kept) gets it added; where ``path`` is a
        symlink, the file it points to is replaced and the link kept.

        >>> import xpnn as xn, tempfile, os
        >>> with xn.Graph().as_default():
        ...     w = xn.Variable([1.0], name="w")
        ...     sess = xn.Session()
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> sess.save(path); sess.set_value(w, [5.0]); sess.restore(path); sess.run(w).tolist()
        [1.0]
        >>> sess.save(path, var_list={"weights": w}); sorted(xn.io.load_arrays(path))
        ['weights']
        """
        named = self._named_variables(var_list, "save")
        with self._lock:  # the values of one moment, between runs (NumPy's are not copies)
            io.save_arrays(path, {n: host_copy(self._leaf_value(v))
                                  for n, v in named.items()},
                           what="Variable", hint="; rename it, or pass var_list={name in the "
                                                 "file: Variable} to save it under another name")

    def restore(self, path, var_list=None) -> None:
        """Load Variables saved by :meth:`save`. Every name, shape and dtype is checked
        before any value changes: a failed restore leaves every Variable as it was. A ``path``
        without ``.npz`` reads the file :meth:`save` wrote, ``path.npz``, or else ``path``;
        where both exist it raises ``ValueError`` naming both rather than guess.

        Without ``var_list`` the file must hold exactly the graph's Variables. With it (a
        list or a dict, as for :meth:`save`) just those are restored and the file may hold
        more, as with TF1's ``Saver``; ``var_list=graph.trainable_variables()`` loads a
        training checkpoint into a graph without the optimizer, skipping its slots.

        >>> import xpnn as xn, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "train.npz")
        >>> with xn.Graph().as_default():
        ...     w = xn.Variable([3.0], name="w")
        ...     step = xn.train.AdamOptimizer(0.1).minimize(xn.reduce_sum(w * w))
        ...     train = xn.Session(); _ = train.run(step); train.save(path)
        ...     trained = train.run(w).tolist()
        >>> with xn.Graph().as_default() as graph:  # inference: the same w, no Adam slots
        ...     w = xn.Variable([0.0], name="w")
        ...     sess = xn.Session()
        >>> sess.restore(path, var_list=graph.trainable_variables())
        >>> sess.run(w).tolist() == trained != [3.0]
        True
        """
        arrays = io.load_arrays(path)
        named = self._named_variables(var_list, "restore")
        hint = "" if var_list is not None else (
            "; to restore only some Variables pass restore(path, var_list=[...]), e.g. "
            "var_list=graph.trainable_variables() to skip the optimizer's slots")
        io.check_shapes({n: v.shape for n, v in named.items()}, arrays, f"restore({path})",
                        extra_ok=var_list is not None, hint=hint)
        self._check_open()
        new = {v: self._new_value(v, arrays[name], f"restore({path})")
               for name, v in named.items()}
        with self._lock:  # every value checked and made: now write, between runs
            self._values.update(new)

    def _named_variables(self, var_list=None, what="save") -> dict:
        """{name in the file: Variable}: the graph's Variables by label, or ``var_list``."""
        if var_list is None:
            pairs = [(v.label, v) for v in self.graph.variables]
        elif isinstance(var_list, dict):
            pairs = list(var_list.items())
        elif isinstance(var_list, Node):
            raise TypeError(f"{what}: var_list must be a list or dict of Variables, got "
                            f"{var_list.label} alone: pass [{var_list.label}]")
        else:
            pairs = [(getattr(v, "label", None), v) for v in var_list]
        if var_list is not None and not pairs:
            raise ValueError(f"{what}: var_list is empty; pass the Variables to {what}, or "
                             f"None for all of them")
        named = {}
        for name, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"{what}: var_list holds {v!r}, not a Variable")
            self._check_graph(v, what)
            if not isinstance(name, str):
                raise TypeError(f"{what}: var_list's names must be strings, got {name!r} for "
                                f"{v.label}")
            if name in named:
                fix = ("give Variables unique names to save them" if var_list is None else
                       "pass var_list as a dict {name: Variable} with distinct names")
                raise ValueError(f"{what}: two Variables are named {name!r}: {fix}")
            named[name] = v
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
        """The array a run uses for ``value`` fed to ``placeholder``: host data (NumPy arrays,
        lists, numbers) is moved to this device, an array of this device is used as is (a
        torch tensor detached from autograd). Either way the dtype follows one rule
        (``Placeholder.run_dtype``); complex data is refused for real placeholders, fractions
        for integer ones, and integers that the placeholder's dtype cannot hold. On CuPy, and
        on JAX or torch arrays on an accelerator, the value checks of device arrays are
        skipped: they would stall the device."""
        if isinstance(value, Node):
            raise TypeError(
                f"the feed for placeholder {placeholder.label} is a graph node "
                f"({value.label}); feed arrays, lists or numbers"
            )
        on_device = array_api_compat.is_array_api_obj(value) and not isinstance(
            value, (np.ndarray, np.generic))
        if on_device:
            if not self.device.owns(value):
                raise TypeError(f"placeholder {placeholder.label} was fed "
                                f"{devices.feed_mismatch(value, self.device)}")
            array, xp = self.device.adopt(value), self.xp
        else:
            try:
                array = np.asarray(value)
            except ValueError as exc:  # ragged nested lists
                raise ValueError(
                    f"placeholder {placeholder.label}: the fed data is not a rectangular array "
                    f"({exc}); feed a NumPy array or lists of equal lengths"
                ) from exc
            if array.dtype.kind not in "fiub":
                raise TypeError(
                    f"placeholder {placeholder.label}: cannot feed data of dtype {array.dtype}"
                )
            xp = _HOST
        source = dtypes.dtype_name(array.dtype) if not xp.isdtype(
            array.dtype, "complex floating") else "complex"
        dtype = placeholder.run_dtype(source, self.dtype)
        if source == "complex" or not on_device or self.device.reads_without_sync:
            check_values(f"placeholder {placeholder.label}", xp, array, source, dtype)
        if on_device:
            if dtypes.dtype_name(array.dtype) != dtype:
                array = self.xp.astype(array, self.device.dtype(dtype))
        else:
            array = self.device.from_host(array, dtype)
        return array

    @staticmethod
    def _accept_shape(plan: Plan, placeholder: Placeholder, shape) -> None:
        """Check a fed shape against the placeholder's, and refuse an empty feed to a run
        that updates Variables: a loss over no samples is NaN, and would be written into
        every weight and optimizer slot."""
        Session._check_shape(placeholder, shape)
        if plan.updates and 0 in shape:
            raise ValueError(
                f"placeholder {placeholder.label} was fed an empty array (shape {shape}) in a "
                "run that updates Variables: a loss over no samples is NaN and would be "
                "written into every weight; skip empty batches"
            )

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

    def run(self, fetches, feed_dict=None, to_numpy=False):
        """Evaluate ``fetches`` (a node, or a list/tuple/dict of nodes) with placeholders fed
        from ``feed_dict``. Returns arrays of this session's namespace (NumPy arrays with
        ``to_numpy=True``); an optimizer step fetches as None. Runs from several threads
        happen one at a time (the Session's lock)."""
        with self._lock:
            last = self._last  # the last run's fetches, their copy, fed keys, executor
            if (last is not None and fetches is last[0] and type(feed_dict) is dict
                    and feed_dict.keys() == last[2]
                    and (last[1] is fetches or last[1] == fetches)):
                executor = last[3]  # the same run again: nothing to look up
                repeat = executor.repeat
                out = None if repeat is None else repeat(feed_dict)
            else:  # (close() forgets the last run: a closed Session never repeats one)
                if self._closed:
                    self._check_open()
                feed_dict, out = feed_dict or {}, None
                with ops.run_context.reading(self.device.reads_without_sync):
                    executor = self._executor(fetches, feed_dict)
            if out is None:
                device = self.device
                if (device.context is None
                        and ops.run_context.reads_without_sync == device.reads_without_sync):
                    out = self._execute(executor, feed_dict)
                else:
                    out = self._execute_in_context(executor, feed_dict)
        if to_numpy:
            out = [None if v is None else host_copy(v) for v in out]
        return executor.plan.rebuild(out)

    def _execute_in_context(self, executor: Executor, feed_dict) -> list:
        """``_execute`` with ``ops.run_context`` set for this device, and within the device's
        context where it has one."""
        with ops.run_context.reading(self.device.reads_without_sync):
            if self.device.context is None:
                return self._execute(executor, feed_dict)
            with self.device.context:  # CuPy: new arrays go to the current GPU, make it ours
                return self._execute(executor, feed_dict)

    def _execute(self, executor: Executor, feed_dict) -> list:
        """Feed, run every step, commit the updates; the fetched values in order."""
        plan = executor.plan
        values = plan.template.copy()
        host_native = self.device.host_native or executor.host_feeds
        accepted = plan.accepted_shapes
        for feed in plan.feeds:
            value = feed_dict[feed.placeholder]
            if type(value) is np.ndarray and value.dtype == feed.dtype:
                # Host data of the dtype it runs in: nothing to convert, or check but its shape.
                if value.shape != accepted.get(feed.slot):  # accepted before: no check
                    self._accept_shape(plan, feed.placeholder, value.shape)
                    accepted[feed.slot] = value.shape
                values[feed.slot] = value if host_native else self.device.from_host(value)
            else:
                values[feed.slot] = value = self._feed_value(feed.placeholder, value)
                self._accept_shape(plan, feed.placeholder, tuple(value.shape))
        state = self._values
        for s, variable in plan.variables.items():
            value = state.get(variable)
            values[s] = value if value is not None else self._leaf_value(variable)
        try:
            executor.call(values)  # Executor.run, inlined: a frame less per run
        except Exception as exc:
            failure = executor.failure(exc)
            if failure is None:
                if not isinstance(exc, StepFailed):
                    raise
                failure = exc
            raise self._op_error(failure.step, values, failure.error) from failure.error
        out = [None if s is None else values[s] for s in plan.fetch_slots]
        copies = executor.copies
        if copies:  # kept between runs (or updated in place): never handed out live
            copy = self.device.copy
            out = [copy(v) if s in copies else v for v, s in zip(out, plan.fetch_slots)]
        if plan.updates:
            self._commit(executor, values)
        return out

    def _executor(self, fetches, feed_dict) -> Executor:
        """The cached executor for these fetches and fed placeholders (its plan compiled on
        first use, then handed to the device: ``Device.compile``, or the portable
        ``Executor`` where ``passes`` is off)."""
        nodes = rebuild = None
        try:  # hashing the fetch structure itself avoids flattening it on every run
            key = (fetches if isinstance(fetches, Node) else (
                type(fetches), tuple(fetches.items() if isinstance(fetches, dict) else fetches)),
                frozenset(feed_dict))
            executor = self._executors.get(key)
        except TypeError:  # unhashable (nested lists): key on the flat node tuple instead
            nodes, rebuild = flatten(fetches)
            key = (tuple(nodes), frozenset(feed_dict))
            executor = self._executors.get(key)
        if executor is None:
            if nodes is None:
                nodes, rebuild = flatten(fetches)
            for node in nodes:
                self._check_graph(node, "Session.run")
            for node in feed_dict:
                self._check_feed_key(node)
            plan = compile_plan(self, nodes, rebuild, feed_dict)
            if self.compute_dtype is not None:
                mixed.rewrite(plan, self)
            for s, constant in plan.constants.items():
                plan.template[s] = self._leaf_value(constant)
            # passes off: the portable executor, every device's reference
            executor = self.device.compile(plan, self) if self.passes else self.portable(plan)
            self._executors[key] = executor
        copy = _snapshot(fetches)
        self._last = None if copy is None else (fetches, copy, frozenset(feed_dict), executor)
        return executor

    def portable(self, plan) -> Executor:
        """The portable executor of ``plan`` in this Session (``Device.compile``'s default)."""
        return Executor(plan, self)

    def _commit(self, executor: Executor, values) -> None:
        """Apply the run's Variable updates, after every other step has succeeded: the
        gradients' shapes checked here, then the executor's commit, which computes (and
        checks) every new value before it writes the first. A failure changes nothing."""
        if executor.checks_shapes:
            for update, check in executor.shape_checks:
                problem = check(update.gather(values))
                if problem:
                    raise self._op_error(update, values, ValueError(problem))
        try:
            executor.commit(values)
        except StepFailed as failure:
            raise self._op_error(failure.step, values, failure.error) from failure.error

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
        """An OpError naming ``step``'s op and its inputs (a Step or an UpdateStep)."""
        op = step.op
        if op is None or isinstance(exc, OpError):
            return exc
        parts = []
        for position, (node, s) in enumerate(zip(op.inputs, step.inputs)):
            v = values[s]
            desc = "freed" if v is None else (
                f"shape {tuple(v.shape)} {dtypes.dtype_name(v.dtype)} on {self.device.name}"
            )
            parts.append(f"  input {position} {node.label}: {desc}")
        error = NumericsError if isinstance(exc, FloatingPointError) else OpError
        return error(
            f"{op.label} ({op.type}) failed: {exc}\n" + "\n".join(parts)
            + "\nno Variable was changed by this run"
        )


_HOST = array_api_compat.array_namespace(np.empty(0))


def _snapshot(fetches):
    """What tells a later run's ``fetches`` the same as these: the node or tuple of nodes
    itself, a copy of a list or dict of nodes (which may be changed in place between
    runs); None for nested structures, which are looked up by their key every run."""
    if isinstance(fetches, Node):
        return fetches
    if type(fetches) in (list, tuple, dict):
        nodes = fetches.values() if type(fetches) is dict else fetches
        if all(isinstance(node, Node) for node in nodes):
            return fetches if type(fetches) is tuple else type(fetches)(fetches)
    return None


def check_values(who, xp, array, source, dtype, fed="was fed", kind="placeholder") -> None:
    """Refuse data that would change meaning on the way to ``dtype``: complex into a real
    placeholder or Variable (``kind``, named by ``who``); NaN, infinity, fractions or
    numbers out of range into an integer one (the cast would make them other integers);
    finite numbers beyond a narrower floating dtype's range (the cast would make them inf)."""
    if source == "complex":
        raise TypeError(
            f"{who} ({dtype}) {fed} complex data: feed real "
            "numbers (take the real part or the magnitude yourself)"
        )
    if 0 in tuple(array.shape):
        return
    if np.dtype(dtype).kind == "f":
        _check_float_range(who, xp, array, source, dtype, fed, kind)
        return
    if np.dtype(dtype).kind not in "iu":
        return
    floating = dtypes.is_floating(source)
    if floating:
        if not bool(xp.all(xp.isfinite(array))):
            bad = "nan" if bool(xp.any(xp.isnan(array))) else (
                "inf" if bool(xp.any(array == math.inf)) else "-inf")
            raise ValueError(
                f"{who} holds {dtype} but {fed} {bad} ({source}): an integer cannot hold it "
                "(the cast would make it another number); replace non-finite values first"
            )
        if not bool(xp.all(array == xp.round(array))):
            raise TypeError(
                f"{who} holds {dtype} but {fed} fractional "
                f"{source} data: round or cast it yourself"
            )
    elif np.dtype(source).kind not in "iu":
        return
    info = np.iinfo(dtype)
    number = float if floating else int  # compared exactly with the integer bounds
    low, high = number(xp.min(array)), number(xp.max(array))
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise ValueError(
            f"{who} holds {dtype} but {fed} the value {bad}, "
            f"outside [{info.min}, {info.max}]: give values that fit, or give the "
            f"{kind} a wider dtype"
        )


def _check_float_range(who, xp, array, source, dtype, fed, kind) -> None:
    """Refuse finite values beyond ``dtype``'s range where ``source`` reaches past it; inf
    and NaN pass as given. One reduction first, the exact search only past the bound."""
    bound = float(np.finfo(dtype).max)
    try:
        kind_of = np.dtype(source).kind
    except TypeError:  # a dtype NumPy does not name (torch's bfloat16): nothing to compare
        return
    if kind_of == "f":
        if np.finfo(source).max <= bound:
            return
        largest = float(xp.max(xp.abs(array)))
        if largest <= bound:  # False for NaN too: then the exact search below
            return
        beyond = xp.logical_and(xp.isfinite(array), xp.abs(array) > bound)
        if not bool(xp.any(beyond)):
            return
        bad = float(xp.max(xp.where(beyond, xp.abs(array), xp.zeros_like(array))))
    elif kind_of in "iu":
        info = np.iinfo(source)
        if -bound <= info.min and info.max <= bound:
            return
        low, high = int(xp.min(array)), int(xp.max(array))  # exact: no abs() of the minimum
        if -bound <= low and high <= bound:
            return
        bad = abs(low) if low < -bound else high
    else:
        return
    raise ValueError(
        f"{who} holds {dtype} but {fed} a value of magnitude {bad:g} ({source}), beyond "
        f"{dtype}'s range "
        f"[-{bound:g}, {bound:g}] (the cast would make it inf): scale the values to fit, or "
        f"give the {kind} a wider dtype"
    )
