"""Layers and models built on the graph: ``layers.py`` (a layer turns an input node into an
output node and owns Variables), ``model.py`` (``Model``: a graph, a Session,
``compile``/``fit``/``evaluate``/``predict``), ``loop.py`` (its one training loop),
``callbacks.py`` (Keras's callbacks), ``classifier.py`` (``NNClassifier``, a Model with
softmax cross-entropy and the series' lesson) and ``saving.py`` (save and load, the
layer stack as data); the sequence layers are in ``embedding.py`` (Embedding,
positions), ``attention.py`` (LayerNorm, MultiHeadAttention, TransformerBlock) and
``recurrent.py`` (SimpleRNN, LSTM, GRU, Bidirectional); ``augmentation.py`` holds
``RandomTranslation`` (data augmentation while training).
"""

from . import callbacks
from .attention import LayerNorm, MultiHeadAttention, TransformerBlock
from .augmentation import RandomTranslation
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)
from .classifier import OPTIMIZERS, SGD, NNClassifier
from .dense import Dense
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
from .model import History, Model
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = ["ACTIVATIONS", "MLP", "OPTIMIZERS", "SGD", "AvgPool2D", "BatchNorm", "Conv2D",
           "Dropout", "Flatten", "History", "Layer", "Linear", "MaxPool2D", "NNClassifier",
           "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
           "Embedding", "LayerNorm", "MultiHeadAttention", "PositionEmbedding",
           "PositionalEncoding", "TransformerBlock", "SimpleRNN", "LSTM", "GRU",
           "Bidirectional", "Model", "Dense", "callbacks", "Callback", "CSVLogger",
           "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau",
           "TensorBoard", "TerminateOnNaN", "RandomTranslation"]
