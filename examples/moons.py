"""Lesson 6: an NNClassifier([2, 10, 2]) learns the two moons with the lesson's loop
(loss, backward, SGD step), then checks every layer's gradients by finite differences.

    python examples/moons.py --device cpu [--backend numpy|array_api_strict|torch|cupy] [--out out]

Writes loss.png and boundary.png into --out when matplotlib is installed.
"""

import argparse
from pathlib import Path

import numpy as np
from example_args import device_arguments, int_at_least, positive_float, positive_int

import xpnn as xn


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lesson 6: two moons",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    device_arguments(parser)
    parser.add_argument("--samples", type=int_at_least(2), default=200, help="points, both moons")
    parser.add_argument("--epochs", type=positive_int, default=300, help="full-batch SGD steps")
    parser.add_argument("--lr", type=positive_float, default=0.5, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="for the data and weights")
    parser.add_argument("--out", default="out", help="folder for loss.png and boundary.png")
    args = parser.parse_args(argv)

    X, y = xn.data.make_moons(args.samples, noise=0.1, seed=args.seed)
    model = xn.nn.NNClassifier([2, 10, 2], device=args.device, backend=args.backend,
                               seed=args.seed)
    optimizer = xn.nn.SGD(model, lr=args.lr)

    losses = []
    for epoch in range(args.epochs):  # full batch
        loss = model.loss(X, y)
        model.backward()
        optimizer.step()
        losses.append(loss)
        if epoch % 50 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch:3d}  loss {loss:.4f}")
    accuracy = model.score(X, y)
    print(f"accuracy {accuracy:.2%} on {len(y)} points")

    # Backprop against central differences (in float64) for every layer's W and b.
    report = xn.gradcheck(model.loss_node, model.params, {model.inputs: X, model.labels: y},
                          session=model.session)
    print(report)
    errors = {check.name: check.max_rel_error for check in report.checks}
    assert max(errors.values()) < 1e-5, errors

    plots = save_plots(model, X, y, losses, Path(args.out))
    return {"losses": losses, "accuracy": accuracy, "gradcheck": errors, "plots": plots}


def save_plots(model, X, y, losses, out):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install xpnn[examples])")
        return []
    out.mkdir(parents=True, exist_ok=True)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(losses)
    ax.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    fig.savefig(out / "loss.png", dpi=100, bbox_inches="tight")
    plt.close(fig)

    # Probability of class 1 on a grid around the data.
    (x0, y0), (x1, y1) = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    prob = model.predict_proba(grid)[:, 1].reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu", alpha=0.6)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k")
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu", edgecolors="k", s=15)
    ax.set(title="decision boundary", xlabel="$x_1$", ylabel="$x_2$")
    fig.savefig(out / "boundary.png", dpi=100, bbox_inches="tight")
    plt.close(fig)

    paths = [out / "loss.png", out / "boundary.png"]
    print("saved", ", ".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
