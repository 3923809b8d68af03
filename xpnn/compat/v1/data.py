"""TF1's ``tf.data``: input pipelines feeding the graph. A Dataset describes the pipeline;
an iterator's ``get_next()`` gives graph tensors (in the element's structure: one tensor,
tuples, dicts) that every ``sess.run`` needing them fills with the next element, once per
run however often they are fetched; the end of the data raises
``tf.errors.OutOfRangeError`` before the run changes anything.

>>> import numpy as np
>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> ds = tf.data.Dataset.from_tensor_slices((np.arange(5.0), np.arange(5)))
>>> x, y = ds.map(lambda x, y: (x * 2.0, y)).batch(2).make_one_shot_iterator().get_next()
>>> x.get_shape().as_list(), x.dtype, y.dtype
([None], 'float64', 'int64')
>>> with tf.Session() as sess:
...     while True:
...         try:
...             a, b, c = sess.run([x, y, y])  # a run takes one element
...         except tf.errors.OutOfRangeError:
...             break
...         print(a.tolist(), b.tolist(), c.tolist())
[0.0, 2.0] [0, 1] [0, 1]
[4.0, 6.0] [2, 3] [2, 3]
[8.0] [4] [4]

Each run takes its element on the Session's device: the data (NumPy arrays are moved
there once per initialization, tensors of the graph are evaluated by the Session) is
sliced, stacked and shuffled there with the array API, and fed to the run's plan as a
value. A function given to ``map`` or ``filter`` is traced once into graph ops, as TF1
does; each element (each batch where ``map`` follows ``batch``) then runs the traced ops
through the Session's compiled plan, with no Python per op.

Names: Dataset (from_tensor_slices, from_tensors, range, zip, from_generator; map, filter,
batch, shuffle, repeat, prefetch, cache, take, skip, concatenate, enumerate, unbatch,
apply, output_types, output_shapes, output_classes, make_one_shot_iterator,
make_initializable_iterator), Iterator (get_next, initializer, make_initializer,
from_structure, output_types, output_shapes, output_classes), make_one_shot_iterator,
make_initializable_iterator, get_output_types, get_output_shapes, get_output_classes,
experimental.AUTOTUNE, AUTOTUNE. Counts (``batch_size``, ``repeat``, ``take``, ``skip``,
``shuffle``'s ``buffer_size``) may be scalar int tensors: placeholders fed with the
initializer, as TF1 allows.

Where it differs from TF1: ``shuffle`` draws its order from NumPy's PCG64, not TF's
Philox: a seed gives the same order in every Session and on every backend, another order
than TF's. ``num_parallel_calls``, ``prefetch`` and ``cache`` are accepted and change
nothing (elements are made when a run needs them).
"""

from __future__ import annotations

import itertools
import sys
import types

import numpy as np

from ... import session as _session
from ...assignment import Group
from ...autodiff import topological_order
from ...graph import Node, Placeholder, TensorShape
from . import errors
from .dtypes import as_dtype, name_of
from .graphs import op_name, op_seeds
from .tensors import as_tensor, host_array
from .unsupported import TF1NameError, message, module_getattr

AUTOTUNE = -1
experimental = types.ModuleType(f"{__name__}.experimental", "TF1's tf.data.experimental.")
experimental.AUTOTUNE = AUTOTUNE
experimental.__getattr__ = module_getattr(experimental, "tf.data.experimental")


# --------------------------------------------------------------------------- structures


class Spec:
    """One component of an element: its dtype name and static shape (None: unknown)."""

    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, None if shape is None else tuple(shape)

    def __repr__(self):
        return f"Spec({self.dtype}, {self.shape})"


def flat(structure) -> list:
    """The leaves of an element structure, in TF's order (dicts by sorted key)."""
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flat(structure[key])]
    if isinstance(structure, tuple):
        return [leaf for part in structure for leaf in flat(part)]
    return [structure]


def pack(structure, leaves):
    """``structure`` with its leaves replaced, in order, by ``leaves``."""
    return _fill(structure, iter(leaves))


def _fill(structure, leaves):
    if isinstance(structure, dict):
        filled = {key: _fill(structure[key], leaves) for key in sorted(structure)}
        return {key: filled[key] for key in structure}
    if isinstance(structure, tuple):
        parts = [_fill(part, leaves) for part in structure]
        return type(structure)(*parts) if hasattr(structure, "_fields") else tuple(parts)
    return next(leaves)


def _structure(value):
    """A value as TF1 reads an element's structure: tuples and dicts nest, anything else
    (a list too: one tensor) is a leaf."""
    if isinstance(value, dict):
        return {key: _structure(v) for key, v in value.items()}
    if isinstance(value, tuple):
        parts = [_structure(v) for v in value]
        return type(value)(*parts) if hasattr(value, "_fields") else tuple(parts)
    return value


def _leaf(value, what):
    """A component given to from_tensor_slices/from_tensors: a node, or host data with TF1's
    dtype."""
    if isinstance(value, Node):
        if value.dtype is None:
            raise TypeError(f"{what}: {value.label} has no known dtype")
        return value
    return host_array(value)


def _spec_of(leaf) -> Spec:
    return Spec(leaf.dtype if isinstance(leaf, Node) else leaf.dtype.name, leaf.shape)


def _output_types(spec):
    return pack(spec, [as_dtype(s.dtype) for s in flat(spec)])


def _output_shapes(spec):
    return pack(spec, [TensorShape(s.shape) for s in flat(spec)])


# --------------------------------------------------------------------------- datasets


class Dataset:
    """TF1's ``tf.data.Dataset``: a description of a pipeline; every method gives a new
    Dataset. ``spec`` is the element structure of :class:`Spec` leaves."""

    spec = None
    inputs: tuple = ()

    # -- sources

    @staticmethod
    def from_tensor_slices(tensors):
        """One element per row of ``tensors`` (arrays, tensors, tuples and dicts of them)."""
        return _Slices(tensors)

    @staticmethod
    def from_tensors(tensors):
        """One element: ``tensors`` whole."""
        return _Tensors(tensors)

    @staticmethod
    def range(*args, output_type="int64"):
        """``range(stop)``, ``range(start, stop[, step])``: int64 scalars, as TF1's."""
        return _Range(slice(*args), name_of(output_type))

    @staticmethod
    def zip(datasets):
        """Elements of ``datasets`` (a tuple or dict of Datasets) side by side, as long as
        the shortest."""
        return _Zip(_structure(datasets))

    @staticmethod
    def from_generator(generator, output_types, output_shapes=None, args=None):
        """Elements from ``generator()`` (a Python callable), made ``output_types``."""
        return _Generator(generator, output_types, output_shapes, args)

    # -- transformations

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """``map_func`` of each element (a tuple element is passed as arguments), traced once
        into graph ops."""
        return _Map(self, map_func)

    def filter(self, predicate, name=None):
        """The elements for which ``predicate`` (traced as ``map``'s) gives True."""
        return _Filter(self, predicate)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None, name=None):
        """Consecutive elements stacked ``batch_size`` at a time; the last batch may be
        smaller unless ``drop_remainder``."""
        return _Batch(self, _count(batch_size, "batch", "batch_size", 1), bool(drop_remainder))

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """Elements in random order, picked from a buffer of ``buffer_size`` (see the
        module's note: NumPy's generator, not TF's)."""
        return _Shuffle(self, _count(buffer_size, "shuffle", "buffer_size", 1), op_seeds(seed),
                        bool(reshuffle_each_iteration))

    def repeat(self, count=None, name=None):
        """The elements ``count`` times over (None or -1: forever)."""
        return _Repeat(self, _count(count, "repeat", "count", -1))

    def take(self, count, name=None):
        """The first ``count`` elements (-1: all)."""
        return _Slice(self, 0, _count(count, "take", "count", -1))

    def skip(self, count, name=None):
        """All but the first ``count`` elements."""
        return _Slice(self, _count(count, "skip", "count", 0), None)

    def concatenate(self, dataset, name=None):
        """This dataset's elements, then ``dataset``'s."""
        return _Concatenate(self, dataset)

    def enumerate(self, start=0, name=None):
        """``(index, element)`` pairs, the index int64 from ``start``."""
        return Dataset.zip((Dataset.range(start, sys.maxsize), self))

    def unbatch(self, name=None):
        """The rows of each element as elements."""
        return _Unbatch(self)

    def prefetch(self, buffer_size, name=None):
        """Accepted; elements are made when a run needs them."""
        return self

    def cache(self, filename="", name=None):
        """Accepted; the pipeline's sources are evaluated once per initialization anyway."""
        return self

    def apply(self, transformation_func):
        return transformation_func(self)

    # -- iterators and structure

    def make_one_shot_iterator(self):
        """An iterator over the elements, initialized on first use in each Session."""
        return Iterator(self, one_shot=True)

    def make_initializable_iterator(self, shared_name=None):
        """An iterator that ``sess.run(iterator.initializer, feed_dict)`` starts (over):
        placeholders the dataset uses are fed there."""
        return Iterator(self, one_shot=False)

    @property
    def output_types(self):
        return _output_types(self.spec)

    @property
    def output_shapes(self):
        return _output_shapes(self.spec)

    @property
    def output_classes(self):
        return pack(self.spec, [Node] * len(flat(self.spec)))

    counts: tuple = ()  # count arguments, each an int, None or a scalar tensor

    def captures(self) -> list:
        """The graph tensors this dataset reads (evaluated at initialization)."""
        return [node for d in self.inputs for node in d.captures()] + [
            c for c in self.counts if isinstance(c, Node)]

    def elements(self, run):
        """The elements, each a tuple of device arrays (the spec's leaves in order)."""
        raise NotImplementedError

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise TF1NameError(message(f"tf.data.Dataset.{name}"))

    def __iter__(self):
        raise TypeError("a tf.data.Dataset is iterated in a graph: take "
                        "make_one_shot_iterator().get_next() and sess.run it")


def _count(value, method, arg, least):
    """A count argument: a Python int, or a scalar integer tensor (a placeholder fed at
    initializer time) read when the iterator starts. -1 where allowed: no end (None)."""
    if isinstance(value, Node):
        if value.dtype not in ("int32", "int64") or value.shape not in ((), None):
            raise TypeError(f"Dataset.{method}: {arg} {value.label} must be a scalar int32 or "
                            f"int64 tensor, not {value.dtype} of shape {value.shape}")
        return value
    if value is None and least == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"Dataset.{method}: {arg} must be an int >= {max(least, 0)}"
                         f"{' (or -1)' if least == -1 else ''}, got {value!r}")
    return None if value == -1 else int(value)


class _Slices(Dataset):
    def __init__(self, tensors, what="from_tensor_slices"):
        structure = _structure(tensors)
        self.leaves = [_leaf(v, what) for v in flat(structure)]
        shapes = [leaf.shape for leaf in self.leaves]
        if () in shapes or len({s[0] for s in shapes if s is not None} - {None}) > 1:
            raise ValueError(f"Dataset.{what}: every component needs the same first "
                             f"dimension to slice; got shapes {shapes}")
        self.spec = pack(structure, [Spec(s.dtype, None if s.shape is None else s.shape[1:])
                                     for s in map(_spec_of, self.leaves)])

    def captures(self):
        return [leaf for leaf in self.leaves if isinstance(leaf, Node)]

    def _arrays(self, run):
        arrays = [run.value(leaf) for leaf in self.leaves]
        rows = {int(a.shape[0]) for a in arrays}
        if len(rows) > 1:
            raise errors.InvalidArgumentError(
                None, None, f"Dataset.from_tensor_slices: the components were fed "
                f"{sorted(rows)} rows; every component needs as many")
        return arrays, rows.pop()

    def elements(self, run):
        arrays, rows = self._arrays(run)
        for i in range(rows):
            yield tuple(a[i, ...] for a in arrays)

    def batches(self, run, size):
        arrays, rows = self._arrays(run)
        for start in range(0, rows, size):
            stop = min(start + size, rows)  # the array API leaves stops past the end open
            yield tuple(a[start:stop, ...] for a in arrays)


class _Tensors(_Slices):
    def __init__(self, tensors):
        structure = _structure(tensors)
        self.leaves = [_leaf(v, "from_tensors") for v in flat(structure)]
        self.spec = pack(structure, [_spec_of(leaf) for leaf in self.leaves])

    def elements(self, run):
        yield tuple(run.value(leaf) for leaf in self.leaves)


class _Range(Dataset):
    def __init__(self, bounds, dtype):
        self.bounds, self.spec = bounds, Spec(dtype, ())

    def elements(self, run):
        b = self.bounds
        for i in range(b.start or 0, b.stop, b.step or 1):
            yield (run.device.from_host(np.asarray(i), self.spec.dtype),)


class _Generator(Dataset):
    def __init__(self, generator, output_types, output_shapes, args):
        self.generator, self.args = generator, tuple(args or ())
        self.spec = _spec_from(output_types, output_shapes)

    def elements(self, run):
        leaves = flat(self.spec)
        for value in self.generator(*self.args):
            values = flat(_structure(value))
            if len(values) != len(leaves):
                raise errors.InvalidArgumentError(
                    None, None, f"Dataset.from_generator: the generator gave {len(values)} "
                    f"components, output_types has {len(leaves)}")
            yield tuple(run.device.from_host(host_array(v, s.dtype), s.dtype)
                        for v, s in zip(values, leaves))


def _spec_from(output_types, output_shapes):
    """The element spec that ``output_types`` and ``output_shapes`` (None: unknown) give."""
    types_ = _structure(output_types)
    shapes = ([None] * len(flat(types_)) if output_shapes is None else
              _leaf_shapes(types_, output_shapes))
    return pack(types_, [Spec(name_of(t), s) for t, s in zip(flat(types_), shapes)])


def _leaf_shapes(types_, shapes) -> list:
    """``output_shapes`` as a list of tuples, one per leaf of ``types_`` (TF1 writes a shape
    as a list, a tuple or a TensorShape)."""
    if isinstance(types_, dict):
        return [s for key in sorted(types_) for s in _leaf_shapes(types_[key], shapes[key])]
    if isinstance(types_, tuple):
        return [s for t, part in zip(types_, shapes) for s in _leaf_shapes(t, part)]
    if shapes is None or isinstance(shapes, TensorShape) and not shapes.known:
        return [None]
    return [tuple(None if d is None or d == -1 else int(d) for d in shapes)]


class _Zip(Dataset):
    def __init__(self, datasets):
        self.inputs = tuple(flat(datasets))
        for d in self.inputs:
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.zip takes a tuple or dict of Datasets, not {d!r}")
        self.spec = pack(datasets, [d.spec for d in self.inputs])

    def elements(self, run):
        for parts in zip(*(d.elements(run) for d in self.inputs)):
            yield tuple(v for part in parts for v in part)


class _Concatenate(Dataset):
    def __init__(self, first, second):
        self.inputs = (first, second)
        a, b = flat(first.spec), flat(second.spec)
        if len(a) != len(b) or any(x.dtype != y.dtype for x, y in zip(a, b)):
            raise TypeError(f"Dataset.concatenate: the datasets' elements differ: "
                            f"{first.output_types} and {second.output_types}")
        self.spec = pack(first.spec, [Spec(x.dtype, _common(x.shape, y.shape))
                                      for x, y in zip(a, b)])

    def elements(self, run):
        return itertools.chain(self.inputs[0].elements(run), self.inputs[1].elements(run))


def _common(a, b):
    """The static shape both ``a`` and ``b`` have (None where they differ)."""
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


class _Batch(Dataset):
    def __init__(self, dataset, size, drop_remainder):
        self.inputs, self.counts, self.drop = (dataset,), (size,), drop_remainder
        first = size if drop_remainder and not isinstance(size, Node) else None
        self.spec = pack(dataset.spec, [Spec(s.dtype, None if s.shape is None else (
            first, *s.shape)) for s in flat(dataset.spec)])

    def elements(self, run):
        (dataset,) = self.inputs
        size = run.count(self.counts[0], "batch_size", 1)
        if type(dataset) is _Slices:  # rows of arrays: slice them, no stacking
            chunks = dataset.batches(run, size)
        else:
            chunks = self._stacked(run, dataset.elements(run), size)
        for chunk in chunks:
            if self.drop and int(chunk[0].shape[0]) < size:
                return
            yield chunk

    def _stacked(self, run, elements, size):
        xp = run.xp
        while True:
            group = list(itertools.islice(elements, size))
            if not group:
                return
            try:
                yield tuple(xp.stack(parts, axis=0) for parts in zip(*group))
            except (ValueError, RuntimeError, TypeError) as error:
                shapes = [[tuple(v.shape) for v in element] for element in group]
                raise errors.InvalidArgumentError(
                    None, None, f"Dataset.batch: elements of shapes {shapes} cannot be "
                    f"stacked into one batch ({error}); make them one shape in map") from error


class _Unbatch(Dataset):
    def __init__(self, dataset):
        self.inputs = (dataset,)
        leaves = flat(dataset.spec)
        if any(not s.shape for s in leaves):
            raise ValueError("Dataset.unbatch: every component needs a first dimension")
        self.spec = pack(dataset.spec, [Spec(s.dtype, s.shape[1:]) for s in leaves])

    def elements(self, run):
        for element in self.inputs[0].elements(run):
            for i in range(int(element[0].shape[0])):
                yield tuple(v[i, ...] for v in element)


class _Slice(Dataset):
    def __init__(self, dataset, start, stop):
        self.inputs, self.counts, self.spec = (dataset,), (start, stop), dataset.spec

    def elements(self, run):
        start, stop = self.counts
        return itertools.islice(self.inputs[0].elements(run), run.count(start, "skip's count"),
                                run.count(stop, "take's count", -1))


class _Repeat(Dataset):
    def __init__(self, dataset, count):
        self.inputs, self.counts, self.spec = (dataset,), (count,), dataset.spec

    def elements(self, run):
        count = run.count(self.counts[0], "repeat's count", -1)
        epochs = itertools.count() if count is None else range(count)
        for _ in epochs:
            empty = True
            for element in self.inputs[0].elements(run):
                empty = False
                yield element
            if empty:  # forever over nothing is nothing, as TF1 ends it
                return


class _Shuffle(Dataset):
    def __init__(self, dataset, buffer_size, seeds, reshuffle):
        self.inputs, self.spec, self.counts = (dataset,), dataset.spec, (buffer_size,)
        self.seeds, self.reshuffle = seeds, reshuffle

    def elements(self, run):
        rng = run.generator(self, self.seeds, self.reshuffle)
        source = self.inputs[0].elements(run)
        size = run.count(self.counts[0], "shuffle's buffer_size", 1)
        buffer = list(itertools.islice(source, size))
        while buffer:
            i = int(rng.integers(len(buffer)))
            chosen = buffer[i]
            refill = next(source, None)
            if refill is None:
                buffer[i] = buffer[-1]
                buffer.pop()
            else:
                buffer[i] = refill
            yield chosen


class _Traced(Dataset):
    """A dataset applying a Python function traced once into graph ops: placeholders for
    the element's components, the function's output nodes."""

    what = "map"

    def __init__(self, dataset, func):
        self.inputs = (dataset,)
        leaves = flat(dataset.spec)
        self.args = [Placeholder(None, op_name(None, f"{self.what}_arg"), s.shape, s.dtype)
                     for s in leaves]
        element = pack(dataset.spec, self.args)
        out = func(*element) if type(element) is tuple else func(element)
        if isinstance(out, list):  # TF1 takes a returned list as a tuple
            out = tuple(out)
        structure = _structure(out)
        self.outputs = [as_tensor(v) for v in flat(structure)]
        self.spec = pack(structure, [_spec_of(node) for node in self.outputs])
        args = set(self.args)
        self.reads = [n for n in topological_order(self.outputs)
                      if isinstance(n, Placeholder) and n not in args]

    def captures(self):
        return super().captures() + self.reads

    def apply_to(self, run, element):
        feeds = dict(zip(self.args, element))
        feeds.update((node, run.values[node]) for node in self.reads)
        return _session.Session.run(run.session, self.outputs, feeds)


class _Map(_Traced):
    def elements(self, run):
        for element in self.inputs[0].elements(run):
            yield tuple(self.apply_to(run, element))


class _Filter(_Traced):
    what = "filter"

    def __init__(self, dataset, predicate):
        super().__init__(dataset, predicate)
        out = flat(self.spec)
        if len(out) != 1 or out[0].dtype != "bool" or out[0].shape not in ((), None):
            raise ValueError(f"Dataset.filter: the predicate must give one scalar bool "
                             f"tensor, not {self.spec}")
        self.spec = dataset.spec

    def elements(self, run):
        for element in self.inputs[0].elements(run):
            (keep,) = self.apply_to(run, element)
            if bool(run.device.to_host(keep)):
                yield element


# --------------------------------------------------------------------------- iterators


class Iterator:
    """TF1's ``tf.data.Iterator``: ``get_next()`` gives the element's tensors;
    ``initializer`` (an op) starts it over in a Session."""

    def __init__(self, dataset, one_shot=False, spec=None):
        self.dataset, self.one_shot = dataset, one_shot
        self.spec = dataset.spec if dataset is not None else spec
        if one_shot:
            fed = [n for n in topological_order(dataset.captures()) if isinstance(n, Placeholder)]
            if fed:
                raise ValueError(
                    f"make_one_shot_iterator: the dataset reads placeholder {fed[0].label}, "
                    "which nothing can feed; use make_initializable_iterator() and feed it "
                    "in sess.run(iterator.initializer, feed_dict)")
        self.initializer = None if one_shot else self.make_initializer(dataset)
        self._gets = 0

    @staticmethod
    def from_structure(output_types, output_shapes=None, shared_name=None,
                       output_classes=None):
        """An iterator of this element structure, over no dataset until a run of
        ``make_initializer(dataset)``'s op."""
        return Iterator(None, spec=_spec_from(output_types, output_shapes))

    @staticmethod
    def from_string_handle(string_handle, output_types, output_shapes=None,
                           output_classes=None):
        raise TF1NameError(message("tf.data.Iterator.from_string_handle"))

    def make_initializer(self, dataset, name=None):
        """The op that starts this iterator over ``dataset``'s elements."""
        if dataset is None:
            return None
        mine, theirs = flat(self.spec), flat(dataset.spec)
        if len(mine) != len(theirs) or any(a.dtype != b.dtype for a, b in zip(mine, theirs)):
            raise TypeError(f"make_initializer: the dataset's elements are "
                            f"{dataset.output_types}, the iterator's {self.output_types}")
        if self.one_shot:
            raise ValueError("a one-shot iterator has no initializer")
        return IteratorInit(self, dataset, name)

    def get_next(self, name=None):
        """The next element's tensors: each run that needs them takes one element."""
        self._gets += 1
        take = _Take(self, self._gets)
        take.nodes = [IteratorGetNext(take, op_name(name, "IteratorGetNext"), s)
                      for s in flat(self.spec)]
        return pack(self.spec, take.nodes)

    def string_handle(self, name=None):
        raise TF1NameError(message("tf.data.Iterator.string_handle"))

    output_types = property(lambda self: _output_types(self.spec))
    output_shapes = property(lambda self: _output_shapes(self.spec))
    output_classes = property(lambda self: pack(self.spec, [Node] * len(flat(self.spec))))


class _Take:
    """One ``get_next()`` call: its tensors take one element per run together."""

    def __init__(self, iterator, order):
        self.iterator, self.order, self.nodes = iterator, order, []


class IteratorGetNext(Placeholder):
    """A component of the next element: a placeholder ``tf.Session`` feeds."""

    def __init__(self, take, name, spec):
        super().__init__(None, name, spec.shape, spec.dtype)
        self.take = take


class IteratorInit(Group):
    """``iterator.initializer``: running it starts the iterator over its dataset."""

    def __init__(self, iterator, dataset, name=None):
        super().__init__([], name=op_name(name, "MakeIterator"))
        self.iterator, self.dataset = iterator, dataset


def make_one_shot_iterator(dataset):
    return dataset.make_one_shot_iterator()


def make_initializable_iterator(dataset, shared_name=None):
    return dataset.make_initializable_iterator(shared_name)


def get_output_types(dataset_or_iterator):
    return dataset_or_iterator.output_types


def get_output_shapes(dataset_or_iterator):
    return dataset_or_iterator.output_shapes


def get_output_classes(dataset_or_iterator):
    return dataset_or_iterator.output_classes


# --------------------------------------------------------------------------- running


class _Run:
    """One initialization of an iterator in a Session: the values of the dataset's graph
    tensors (evaluated with the initializer's feeds), its host data on the device, the
    shuffles' generators."""

    def __init__(self, session, dataset, feeds):
        self.session, self.device, self.xp = session, session.device, session.xp
        self.feeds = {k: v for k, v in feeds.items() if not isinstance(k, IteratorGetNext)}
        nodes = list(dict.fromkeys(dataset.captures()))
        if nodes:
            needed = set(topological_order(nodes))
            values = _session.Session.run(session, nodes, {
                k: v for k, v in self.feeds.items() if k in needed})
            self.values = dict(zip(nodes, values))
        else:
            self.values = {}
        self.host: dict = {}  # id of a host array -> it on the device
        self.generators: dict = {}
        self.drawn: dict = {}

    def value(self, leaf):
        """A source's component on the device."""
        if isinstance(leaf, Node):
            return self.values[leaf]
        found = self.host.get(id(leaf))
        if found is None:
            found = self.host[id(leaf)] = self.device.from_host(leaf, leaf.dtype.name)
        return found

    def count(self, count, what, least=0):
        """A count argument's value in this initialization (None: no end)."""
        if not isinstance(count, Node):
            return count
        value = int(self.device.to_host(self.values[count]))
        if value < least:
            raise errors.InvalidArgumentError(None, count, f"{what} {count.label} is {value}; "
                                              f"it must be >= {max(least, 0)}")
        return None if value == -1 else value

    def generator(self, stage, seeds, reshuffle):
        """``stage``'s generator: one per initialization, drawn on over the epochs a
        reshuffling stage sees; the same start every epoch where it does not reshuffle."""
        if seeds is None:  # no seed: the Session's generator picks one per initialization
            if stage not in self.drawn:
                self.drawn[stage] = int(self.session._random.integers(2 ** 63))
            seeds = self.drawn[stage]
        if reshuffle:
            found = self.generators.get(stage)
            if found is None:
                found = self.generators[stage] = np.random.Generator(np.random.PCG64(seeds))
            return found
        return np.random.Generator(np.random.PCG64(seeds))


def feed_iterators(session, nodes, feeds) -> dict:
    """``feeds`` with the next element of each iterator that ``nodes`` need (a run of an
    initializer first starts its iterator over). Raises OutOfRangeError at the end of the
    data, before the run changes anything."""
    found = getattr(session, "_tf1_data", None)
    if found is None:  # the Session's iterators, and which ones each fetch list needs
        found = session._tf1_data = {"plans": {}, "iterators": {}}
    key = tuple(nodes)
    plan = found["plans"].get(key)
    if plan is None:
        order = topological_order(nodes)
        inits = [n for n in order if isinstance(n, IteratorInit)]
        nexts = [n for n in order if isinstance(n, IteratorGetNext)]
        takes = sorted({n.take for n in nexts}, key=lambda t: t.order)
        plan = found["plans"][key] = (inits, [(t, [n for n in nexts if n.take is t])
                                              for t in takes])
    inits, takes = plan
    if not inits and not takes:
        return feeds
    session._check_open()
    iterators = found["iterators"]
    with session._lock:  # threads sharing the Session take distinct elements
        for init in inits:
            iterators[init.iterator] = init.dataset.elements(_Run(session, init.dataset, feeds))
        feeds = dict(feeds)
        for take, needed in takes:
            if all(n in feeds for n in needed):  # fed by the user: the iterator stays put
                continue
            element = _next(iterators, take, session)
            for node in needed:
                feeds.setdefault(node, element[take.nodes.index(node)])
    return feeds


def _next(iterators, take, session):
    iterator = take.iterator
    elements = iterators.get(iterator)
    if elements is None:
        if not iterator.one_shot:
            raise errors.FailedPreconditionError(
                None, take.nodes[0], "GetNext() failed because the iterator has not been "
                "initialized. Ensure that you have run the initializer operation for this "
                "iterator before getting the next element.")
        elements = iterators[iterator] = iterator.dataset.elements(
            _Run(session, iterator.dataset, {}))
    element = next(elements, None)
    if element is None:
        raise errors.OutOfRangeError(None, take.nodes[0], f"End of sequence: no element "
                                     f"left for {take.nodes[0].label}")
    return element


__getattr__ = module_getattr(sys.modules[__name__], "tf.data")
