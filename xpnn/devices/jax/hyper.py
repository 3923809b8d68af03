"""Optimizer hyper-parameters in a compiled plan. The portable path reads them at every run
(a schedule may change the learning rate between runs). In a compiled function, what is
read while tracing is frozen: so the built-in optimizers' float hyper-parameters become
arguments of the compiled function (a new learning rate needs no new compilation), and
every other simple attribute of an optimizer (Nesterov's flag, a user's optimizer's
numbers, which its update may branch on) keys the compilation cache instead.

>>> import xpnn as xn
>>> from xpnn.devices.jax.hyper import Hyper
>>> step = xn.train.MomentumOptimizer(0.1, 0.9).minimize(xn.Variable(1.0) ** 2)
>>> hyper = Hyper([step])
>>> [round(float(v), 6) for v in hyper.values()], hyper.key()
([0.1, 0.9], (1, False, False))
"""

from __future__ import annotations

import copy
import operator

from ... import optimizers

# Built-in optimizers whose update is plain arithmetic on these attributes (no branching).
TRACED = {
    optimizers.GradientDescentOptimizer: ("_learning_rate",),
    optimizers.MomentumOptimizer: ("_learning_rate", "momentum"),
    # Adam's betas key the cache: its (1 - beta) is rounded in the dtype on the host.
    optimizers.AdamOptimizer: ("_learning_rate", "epsilon"),
    optimizers.AdamWOptimizer: ("_learning_rate", "epsilon", "weight_decay"),
}
_SIMPLE = (bool, int, float, str, type(None))


class Hyper:
    """The hyper-parameters of the optimizers that ``updates`` (Update ops) belong to."""

    def __init__(self, updates):
        found = []
        for op in updates:
            opt = getattr(op, "optimizer", None)
            if opt is not None and all(opt is not o for o in found):
                found.append(opt)
        self.traced, self.static = [], []
        for opt in found:
            names = [n for n in TRACED.get(type(opt), ()) if type(vars(opt).get(n)) is float]
            self.traced.append((opt, names))
            self.static.append((opt, [n for n, v in vars(opt).items()
                                      if n not in names and isinstance(v, _SIMPLE)]))

        # As parallel tuples, read by map() at every run (no Python frame per call).
        self._dicts_owners = tuple(opt for opt, names in self.traced for _ in names)
        self._dicts = tuple(vars(opt) for opt in self._dicts_owners)
        self._names = tuple(n for _, names in self.traced for n in names)
        self._static = [(opt, n) for opt, names in self.static for n in names]
        self._objects = tuple(opt for opt, _ in self._static)
        self._attributes = tuple(n for _, n in self._static)
        # What ``seen`` reads: each optimizer's attributes above, from its own __dict__ (they
        # were found there) by one itemgetter.
        names = {}
        for opt, n in zip(self._dicts_owners + self._objects, self._names + self._attributes):
            names.setdefault(id(opt), (opt, []))[1].append(n)
        self._seen = tuple((operator.itemgetter(*ns), vars(opt)) for opt, ns in names.values())
        self._last = self._arrays = None

    def values(self) -> tuple:
        """The traced hyper-parameters' current values, as JAX scalars made when they
        change (weakly typed, as Python floats are: a float32 update stays float32; a
        Python float would cost a conversion at every call)."""
        current = tuple(map(operator.getitem, self._dicts, self._names))
        if current != self._last:
            import jax.numpy as jnp

            self._last, self._arrays = current, tuple(jnp.asarray(v) for v in current)
        return self._arrays

    def seen(self):
        """Every attribute ``values`` and ``key`` read, as it is now (None where one was
        deleted): equal to an earlier ``seen()``, neither has changed since."""
        read, of = self.seen_reader()
        try:
            return read(of)
        except KeyError:
            return None

    def seen_reader(self):
        """(read, of): ``read(of)`` is ``seen()``'s value, or raises KeyError where one
        attribute was deleted; one C call for the usual single optimizer."""
        if not self._seen:
            return tuple, ()
        if len(self._seen) == 1:
            return self._seen[0]
        return (lambda pairs: tuple([get(attributes) for get, attributes in pairs])), self._seen

    def key(self) -> tuple:
        """The other attributes' current values: a change compiles anew."""
        try:
            return tuple(map(getattr, self._objects, self._attributes))
        except AttributeError:  # one was deleted: None, as for an attribute never set
            return tuple([getattr(opt, n, None) for opt, n in self._static])

    def bound(self, traced) -> dict:
        """While tracing: ``{id(optimizer): a copy that reads traced (tracers) for its
        floats}``. The graph's optimizers are left alone: another thread's Session of the
        same graph may be reading them."""
        values = iter(traced)
        copies = {}
        for opt, names in self.traced:
            if names:
                twin = copies[id(opt)] = copy.copy(opt)
                for n in names:
                    vars(twin)[n] = next(values)
        return copies
