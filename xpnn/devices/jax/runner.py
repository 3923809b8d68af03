"""JAX's executor: a plan run as one ``jax.jit`` call (``Runner``, what ``JaxDevice.compile``
returns).

Per run: the feeds' shapes and dtypes (and the optimizers' untraced attributes) pick a cache
entry; the host feeds are copied (a compiled call reads them after it returns, and the
caller may reuse its array), the entry's random draws are made, and one call computes the
fetched values and the updated Variables' new values, the old ones' buffers donated. The
Session checked the feeds' shapes and values before the run, and writes the new values at
its commit, when nothing can fail any more.

The Session's repeated run (the last run's fetches and fed placeholders, a training loop's
every step) is served by ``repeat``: where the feeds are host arrays of the shapes and
dtypes of the entry the last run called, and the optimizers' attributes are as that call
saw them, every check the Session makes would pass unseen; so the entry is called again
(fed labels and rates still checked first) and the new values written, in a few Python
calls. Anything else returns None, and the Session runs it the checked way.

A new entry is traced first (``jax.jit(...).trace``), before anything is drawn or donated.
When that trace fails, the portable program runs on the same values: it raises the portable
path's error naming the op (an update's gradient of the wrong shape fails after it, as at
the Session's commit), or, when it succeeds, some op cannot be traced (it reads a value on
the host: ``check_numerics``, a data-dependent shape) and the plan falls back to its
portable (eager) program for good (``reason`` says why).

Each entry has a ``jax.jit`` function of its own, and the runner keeps the
``XPNN_JIT_CACHE`` (32) entries used last: JAX caches its traces, lowerings and executables
under the traced function, so one function for every batch size would keep them all (a
few MB each); an evicted entry's function takes them with it.
"""

from __future__ import annotations

import operator
import os
import threading
import warnings
from collections import OrderedDict

import numpy as np

from ...executor import Executor
from ...plan import StepFailed, bind
from . import kernels
from .body import UpdateShapeError, make_body
from .checks import Checks
from .draws import Draws
from .fed import FedChecks
from .hyper import Hyper
from .layout import Layout, _taker

# Raised at a compilation where a donated buffer cannot hold any result (a Variable whose new
# value has another dtype), or where the platform does not implement donation: the call is
# then right, only without the reuse.
_DONATION_WARNINGS = ("Some donated buffers were not usable", "Donation is not implemented")
# catch_warnings swaps the process's warning filters: two threads compiling at once would
# leave one's filters behind.
_COMPILING = threading.Lock()


CACHE_SIZE = 32  # entries (feed shapes) a plan keeps compiled, unless XPNN_JIT_CACHE says


def cache_size() -> int:
    """``$XPNN_JIT_CACHE`` (an integer >= 1), else ``CACHE_SIZE``."""
    text = os.environ.get("XPNN_JIT_CACHE", "").strip()
    if not text:
        return CACHE_SIZE
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"XPNN_JIT_CACHE={text!r}: set it to how many batch shapes a JAX "
                         f"plan keeps compiled, an integer >= 1 (unset: {CACHE_SIZE})")
    return int(text)


def register_kernels() -> None:
    """Import the modules whose kernels a compiled plan (and its loop bodies) traces."""
    from . import conv as _conv  # noqa: F401  (registers the conv kernels; imports jax)
    from . import cross_entropy as _cross_entropy  # noqa: F401  (registers its kernel)
    from . import indexing as _indexing  # noqa: F401  (registers the scatter-add kernel)
    from . import recurrent as _recurrent  # noqa: F401  (registers the LSTM cell's kernel)


class Entry:
    """A traced (feed shapes, hyper-parameter key): its own jitted function, the random
    draws that trace asked for, and the values it checks for NaN and infinity."""

    __slots__ = ("jitted", "draws", "checks", "fed", "compiled", "key")

    def __init__(self, jitted, draws, checks, fed, key):
        self.jitted, self.draws, self.checks = jitted, tuple(draws), list(checks)
        self.fed = fed  # (step, slot, check): the host checks of fed values
        self.compiled = False
        self.key = key  # ((shape, dtype) of each feed, the hyper-parameter key)


class Runner(Executor):
    """JAX's executor: the plan compiled into one ``jax.jit`` call per cache entry, where it
    computes anything. A ``check_numerics`` Session runs the portable program (its checks
    read every value on the host), through a runner all the same (``eager``): it hands out
    copies of Variables, whose buffers another plan may donate."""

    def __init__(self, plan, session):
        super().__init__(plan, session)
        if not self.eager:
            self.body = make_body(plan, self.layout, self.program, self, session.xp,
                                  self.check_shapes, self.traces)
        self.call = self._run

    def passes(self, plan, session) -> None:
        """The pass: the kernels traced in place of some ops' forward, the checks, the
        host checks of fed values and the draws a traced plan takes, where there is a call
        to make."""
        self.draws = Draws(session.draw)
        self.hyper = Hyper([u.op for u in plan.updates])
        self.check_shapes = [u.check_shapes for u in plan.updates]
        self.entries = OrderedDict()  # key -> Entry, the least recently used first
        self.size = cache_size()
        self.traces = [0]
        self.eager, self.reason, self.body, self.new = True, "not compiled", None, None
        self.checks = self.fed = None
        self.fetched = self.repeat = None  # set where a plan can repeat
        if session.check_numerics:
            self.layout = Layout(plan)
            return
        register_kernels()
        self.checks = Checks(plan, session.xp)
        # With checks a failed run keeps every buffer: nothing donated.
        self.layout = Layout(plan, donate=not self.checks.steps)
        if not (self.layout.computed or plan.updates):  # nothing to compute: no call
            return
        self.fed = FedChecks(plan, session)  # ops that read values read nothing traced
        kernels.swap_in(plan)
        self.fed.record()
        self.eager, self.reason = False, None
        # Host feeds go into the call as they are; the trace checks the updates' shapes.
        self.host_feeds, self.checks_shapes = True, False
        self._prepare_repeat(plan)
        for step in plan.steps:
            if step.op is not None and step.op.random:
                bind(step, session.device, self.draws.draw, session)

    def _prepare_repeat(self, plan) -> None:
        """What ``repeat`` reads: each fetch's index among the call's results (None for an
        update), the Variables in the call's order. A plan that hands out a fed or kept
        value, or is fed an op (a loop body's), has no repeat."""
        layout, index = self.layout, {s: k for k, s in enumerate(self.layout.computed)}
        fetched = [None if s is None else index.get(s) for s in plan.fetch_slots]
        if (layout.hands_out or any(s is not None and k is None
                                    for s, k in zip(plan.fetch_slots, fetched))
                or any(feed.dtype is None for feed in plan.feeds)):
            return
        self.fetched, self.placeholders = fetched, [feed.placeholder for feed in plan.feeds]
        self.take_state = _taker([plan.variables[s] for s in layout.donated + layout.kept])
        # The fetched values from the call's results, a list; an update's None is the last
        # result (the check_numerics counts, None: an entry with checks does not repeat).
        picks = [-1 if k is None else k for k in fetched]
        get = operator.itemgetter(*picks) if picks else None
        # A sequence the plan's rebuild reads (itemgetter of two or more gives a tuple).
        self.pick = ((lambda out: ()) if get is None else (lambda out: (get(out),))
                     if len(picks) == 1 else get)
        self.written = slice(len(layout.computed), -1)  # the results a commit writes

    def _jit(self, static):
        """A new ``jax.jit`` of the body for one entry (a function object of its own), its
        hyper-parameter key ``static`` bound. It takes the arrays as one flat argument
        list, feeds, donated, kept, hyper-parameters then draws, and returns the computed
        fetches, the new values and the counts as one flat tuple: jax.jit's dispatch
        flattens nested arguments and rebuilds nested results at every call."""
        import jax

        body, layout = self.body, self.layout
        feeds, donated = len(layout.feeds), len(layout.feeds) + len(layout.donated)
        kept = donated + len(layout.kept)
        hyper = kept + len(self.hyper.values())

        def entry(*args):
            fetched, new, counts = body(args[:feeds], args[feeds:donated], args[donated:kept],
                                        args[kept:hyper], args[hyper:], static)
            return (*fetched, *new, counts)

        return jax.jit(entry, donate_argnums=tuple(range(feeds, donated)))

    def _run(self, values) -> None:
        if self.eager:
            self.program(values)
            self._hand_out(values)
            return
        feeds = self.layout.take_feeds(values)
        key = (tuple([(v.shape, v.dtype) for v in feeds]), self.hyper.key())
        entries = self.entries
        entry = entries.get(key)
        if entry is None:
            entry = self._trace(key, values, feeds)
            if entry is None:  # ran on the portable program
                return
        elif len(entries) > 1:
            entries.move_to_end(key)
        if entry.fed:  # before anything is drawn or donated
            self.fed.run(values, entry.fed)
        self._call(entry, values, feeds)

    def _arguments(self, values, feeds, draws) -> tuple:
        return feeds + self.layout.take_variables(values) + self.hyper.values() + draws

    def _trace(self, key, values, feeds):
        """The new entry for ``key``, or None after running the portable program instead."""
        failure, jitted = None, self._jit(key[1])
        try:
            jitted.trace(*self._arguments(values, feeds, ()))
        except Exception as exc:  # noqa: BLE001 - the portable program tells what it was
            failure = exc
        if failure is None:
            fed = self.fed.recorded() if self.fed is not None else ()
            entry = self.entries[key] = Entry(jitted, self.draws.recorded, self.checks.recorded,
                                              fed, key)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)  # with its function, JAX's caches of it
            return entry
        for s in self.layout.feeds:  # host feeds: the portable program takes device arrays
            if type(values[s]) is np.ndarray:
                values[s] = self.device.from_host(values[s])
        self.program(values)  # raises the portable error (naming the op) where there is one
        if isinstance(failure, UpdateShapeError):  # refused as the Session's commit does
            raise StepFailed(failure.update, ValueError(failure.problem))
        self._fall_back(failure)
        self._hand_out(values)
        return None

    def _call(self, entry, values, feeds) -> None:
        feeds = tuple([np.array(v) if type(v) is np.ndarray else v for v in feeds])
        draws = self.draws.make(entry.draws) if entry.draws else ()
        args = self._arguments(values, feeds, draws)
        if entry.compiled:
            out = entry.jitted(*args)
        else:  # the first call compiles
            with _COMPILING, warnings.catch_warnings():
                for message in _DONATION_WARNINGS:
                    warnings.filterwarnings("ignore", message=message)
                out = entry.jitted(*args)
            entry.compiled = True
        computed = self.layout.computed
        if entry.checks:  # a NaN or infinity fails the run here, before any value is kept
            self.checks.raise_found(entry.checks, out[-1], values)
        for s, value in zip(computed, out):
            values[s] = value
        self.new = out[len(computed):-1]  # written at the commit
        if self.layout.hands_out:
            self._hand_out(values)
        self.repeat = self._repeat_of(entry) if self._repeatable(entry) else None

    def _repeatable(self, entry) -> bool:
        """Whether ``repeat`` may run ``entry`` again: it draws, checks and hands out nothing,
        every fetch is a value it computes or None, and it was traced for host feeds of
        the placeholders' run dtypes (``Feed.dtype``)."""
        if self.fetched is None or entry.draws or entry.checks:
            return False
        return all(dtype == feed.dtype for (_, dtype), feed in zip(entry.key[0], self.plan.feeds))

    def _repeat_of(self, entry):
        """The Session's repeated run (``Executor.repeat``) of the entry just called, what it
        reads bound once: ``entry`` called again where the feeds are host arrays of its
        shapes and dtypes, which the Session accepted when it made the entry and would pass
        now without a look, the fed values that ops read pass their checks, and the
        optimizers' attributes are as they were (the hyper-parameters of this call are
        passed again); then the new values written, and the fetched values in order. It
        returns None where the Session must run it (and raise any error)."""
        read, of = self.hyper.seen_reader()
        seen, hyper = self.hyper.seen(), self.hyper.values()
        feeds = tuple((p, shape, dtype) for p, (shape, dtype) in zip(self.placeholders,
                                                                    entry.key[0]))
        state, take_state, jitted = self.state, self.take_state, entry.jitted
        targets, written, pick = self.layout.targets, self.written, self.pick
        fed, fed_slots, checks = entry.fed, self.layout.feeds, self.fed

        def repeat(feed_dict):
            try:
                if read(of) != seen:
                    return None
            except KeyError:  # an attribute deleted
                return None
            args = []
            for placeholder, shape, dtype in feeds:
                value = feed_dict[placeholder]
                if (type(value) is not np.ndarray or value.shape != shape
                        or (value.dtype is not dtype and value.dtype != dtype)):
                    return None
                args.append(value.copy())  # the call may read it after it returns
            if fed:
                try:
                    checks.run(dict(zip(fed_slots, args)), fed)
                except StepFailed:
                    return None
            try:
                args += take_state(state)
            except KeyError:  # a Variable's value not made yet
                return None
            args += hyper
            out = jitted(*args)
            state.update(zip(targets, out[written]))
            return pick(out)

        return repeat

    def _hand_out(self, values) -> None:
        """Fetched placeholders as device arrays, fetched Variables as copies."""
        for s in self.layout.fetched_feeds:
            if type(values[s]) is np.ndarray:
                values[s] = self.device.from_host(values[s])
        for s in self.layout.fetched_variables:
            values[s] = values[s].copy()

    def commit(self, values) -> None:
        """Write the new values the compiled call made (the portable commit once the plan
        has fallen back)."""
        if self.eager:
            super().commit(values)
            return
        new, self.new = self.new, None
        state = self.state
        for variable, value in zip(self.layout.targets, new):
            state[variable] = value

    def _fall_back(self, failure) -> None:
        """Make this the portable executor again, for good: its runs are eager from now on
        (this one's commit too)."""
        self.eager, self.body = True, None
        self.repeat = None
        self.host_feeds, self.checks_shapes = False, True
        self.entries.clear()
        self.reason = f"{type(failure).__name__}: {failure}"
