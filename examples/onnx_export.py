"""Train a small CNN (Conv2D, BatchNorm, Dropout) on any backend, export it to ONNX, and
serve its predictions from onnxruntime: stripes, horizontal or vertical, in noisy 12x12
images.

    python examples/onnx_export.py --device cpu [--backend numpy|torch|jax|...] [--out out]

Writes out/stripes.onnx and prints how far onnxruntime's logits are from xpnn's and how
often their classes agree. Needs onnx and onnxruntime (pip install xpnn[onnx]).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from example_args import device_arguments, int_at_least, positive_int

import xpnn as xn


def stripes(n, size=12, seed=0):
    """n noisy images (n, size, size, 1) and their labels: 0 horizontal, 1 vertical."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    rows = (np.arange(size) % 4 < 2).astype(np.float32)
    images = np.where(labels[:, None, None] == 0, rows[None, :, None], rows[None, None, :])
    images = images + 0.5 * rng.standard_normal((n, size, size))
    return images[..., None].astype(np.float32), labels


def build(device, backend, seed):
    with xn.Graph().as_default():
        model = xn.nn.Model([
            xn.nn.Conv2D(1, 8, 3, padding="SAME", seed=seed), xn.nn.BatchNorm(8),
            xn.nn.ReLU(), xn.nn.MaxPool2D(2), xn.nn.Flatten(), xn.nn.Dropout(0.2),
            xn.nn.Linear(6 * 6 * 8, 2, seed=seed + 1)], input_shape=(12, 12, 1),
            device=device, backend=backend, seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def serve(path, X, batch_size):
    """onnxruntime's logits for X, batch by batch (the model's batch axis is dynamic)."""
    import onnxruntime as ort

    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = runtime.get_inputs()[0].name
    return np.concatenate([runtime.run(None, {name: X[i:i + batch_size]})[0]
                           for i in range(0, len(X), batch_size)])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export a trained CNN to ONNX and serve it",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--samples", type=int_at_least(8), default=512, help="training images")
    parser.add_argument("--epochs", type=positive_int, default=3, help="passes over the data")
    parser.add_argument("--batch-size", type=positive_int, default=100,
                        help="images per onnxruntime call")
    parser.add_argument("--seed", type=int, default=0, help="for the data and weights")
    parser.add_argument("--out", default="out", help="folder for stripes.onnx")
    args = parser.parse_args(argv)
    try:
        import onnxruntime  # noqa: F401 - checked before training
    except ImportError:
        sys.exit("onnx_export.py needs onnx and onnxruntime: pip install xpnn[onnx]")

    X, y = stripes(args.samples, seed=args.seed)
    X_test, y_test = stripes(256, seed=args.seed + 1)
    model = build(args.device, args.backend, args.seed)
    model.fit(X, y, epochs=args.epochs, batch_size=32, verbose=0, learning_rate=0.01)
    path = Path(args.out) / "stripes.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export_onnx(path)

    served, ours = serve(path, X_test, args.batch_size), model.predict(X_test)
    gap = float(np.abs(served - ours).max())
    agreement = float(np.mean(served.argmax(1) == ours.argmax(1)))
    accuracy = float(np.mean(served.argmax(1) == y_test))
    print(f"trained with {model.device.backend} on {model.device.name}, exported {path}")
    print(f"onnxruntime on {len(X_test)} test images: accuracy {accuracy:.2%}, classes agree "
          f"with xpnn's on {agreement:.2%}, largest logit gap {gap:.2e}")
    return {"path": path, "gap": gap, "agreement": agreement, "accuracy": accuracy}


if __name__ == "__main__":
    main()
