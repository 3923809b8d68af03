"""Layers and models built on the graph: ``layers.py`` (a layer turns an input node into an
output node and owns Variables), ``classifier.py`` (``NNClassifier``: a graph, a Session and
the series' training loop) and ``saving.py`` (save and load, the layer stack as data); the
sequence layers are in ``embedding.py`` (Embedding, positions), ``attention.py``
(LayerNorm, MultiHeadAttention, TransformerBlock) and ``recurrent.py`` (SimpleRNN, LSTM,
GRU, Bidirectional).
"""

from .attention import LayerNorm, MultiHeadAttention, TransformerBlock
from .classifier import OPTIMIZERS, SGD, History, NNClassifier
from .embedding import Embedding, PositionalEncoding, PositionEmbedding
from .layers import (
    ACTIVATIONS,
    MLP,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = ["ACTIVATIONS", "MLP", "OPTIMIZERS", "SGD", "AvgPool2D", "BatchNorm", "Conv2D",
           "Dropout", "Flatten", "History", "Layer", "Linear", "MaxPool2D", "NNClassifier",
           "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
           "Embedding", "LayerNorm", "MultiHeadAttention", "PositionEmbedding",
           "PositionalEncoding", "TransformerBlock", "SimpleRNN", "LSTM", "GRU",
           "Bidirectional"]
