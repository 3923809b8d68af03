"""ONNX export: ``xn.onnx.export(session, inputs, outputs, path)`` writes the forward graph
from ``inputs`` (placeholders) to ``outputs`` as an ONNX model, with the Session's current
Variable values as initializers, for onnxruntime or any other ONNX runtime. It needs the
``onnx`` package (``pip install xpnn[onnx]``), imported only when ``export`` runs.

The graph is exported in inference mode: placeholders that are not inputs take their
inference value (a scalar bool placeholder, such as a model's ``training`` flag, is False
unless ``feed_dict`` says otherwise), and whatever no longer depends on an input is
computed once at export (BatchNorm's moving statistics fold into one scale and shift,
dropout becomes the identity). Recurrent layers export as their unrolled steps
(``loop="unroll"``, the default); an op with no ONNX form is refused, naming the node.
"""

from .converters import SUPPORTED
from .export import export

__all__ = ["export", "SUPPORTED"]
