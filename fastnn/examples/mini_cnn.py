"""The seed's mini CNN (Algorithm 3), built from fastnn's layers and trained by SGD one example at a time.

    x = (x1, x2, x3) --conv filter (w1, w2)--> a = (x1 w1 + x2 w2, x2 w1 + x3 w2) --ReLU--> o
      --(v1, v2)--> yhat = o1 v1 + o2 v2,   loss = ln(1 + exp(-y yhat)),  y in {-1, +1}

With sigma the sigmoid and H(a) = 1[a > 0], the gradients in closed form are

    dl/dv_k = (sigma(y yhat) - 1) y o_k
    dl/dw1  = (sigma(y yhat) - 1) y (v1 H(a1) x1 + v2 H(a2) x2)
    dl/dw2  = (sigma(y yhat) - 1) y (v1 H(a1) x2 + v2 H(a2) x3)

In fastnn the network is Sequential([Conv1D(1, 1, 2, bias=False), ReLU(), Flatten(), Linear(2, 1, bias=False)])
and the loss is fastnn.logistic_loss; backpropagation through the layers gives exactly those gradients.
An SGD step computes every gradient first, from the weights before the update, and only then updates
w and v together (updating w with an already-updated v is the known mistake this avoids).

Run: python -m fastnn.examples.mini_cnn
"""
import numpy as np

from .. import logistic_loss
from ..nn import SGD, Conv1D, Flatten, Linear, ReLU, Sequential


def mini_cnn(w=(0.5, -0.3), v=(0.8, 0.4), *, backend=None):
    """The mini CNN with filter w = (w1, w2) and output weights v = (v1, v2), float64.

    Its flat parameter vector is params = [w1, w2, v1, v2].
    """
    model = Sequential([Conv1D(1, 1, 2, bias=False), ReLU(), Flatten(), Linear(2, 1, bias=False)],
                       input_shape=(1, 3), dtype=np.float64, backend=backend)
    model.params[:] = [*w, *v]
    return model


def gradients(model, x, y):
    """(loss, [dl/dw1, dl/dw2, dl/dv1, dl/dv2]) for one example x = (x1, x2, x3), y in {-1, +1}, by backprop."""
    yhat = model.forward(np.asarray(x, dtype=np.float64).reshape(1, 1, 3), training=True)
    loss, dyhat = logistic_loss(yhat[:, 0], np.array([y]), backend=model.backend)
    model.backward(dyhat.reshape(1, 1))
    return loss, model.grads.copy()


def closed_form_gradients(w, v, x, y):
    """[dl/dw1, dl/dw2, dl/dv1, dl/dv2] from the formulas above, in plain Python floats."""
    (w1, w2), (v1, v2), (x1, x2, x3) = w, v, x
    a1, a2 = x1 * w1 + x2 * w2, x2 * w1 + x3 * w2
    o1, o2 = max(0.0, a1), max(0.0, a2)
    yhat = o1 * v1 + o2 * v2
    g = (1.0 / (1.0 + np.exp(-y * yhat)) - 1.0) * y
    h1, h2 = float(a1 > 0), float(a2 > 0)
    return [g * (v1 * h1 * x1 + v2 * h2 * x2), g * (v1 * h1 * x2 + v2 * h2 * x3), g * o1, g * o2]


def sgd_step(model, optimizer, x, y):
    """One step of Algorithm 3 on example (x, y): every gradient from the current weights, then one update."""
    loss, _ = gradients(model, x, y)
    optimizer.step(model.params, model.grads, model.weight_slices)
    return loss


def train(X, y, *, epochs=20, learning_rate=0.1, random_state=0, backend=None):
    """Algorithm 3: SGD on one randomly picked example at a time; returns (model, mean loss per epoch)."""
    rng = np.random.default_rng(random_state)
    model = mini_cnn(*np.split(rng.normal(0.0, 0.5, 4), 2), backend=backend)
    optimizer = SGD(learning_rate)
    optimizer.setup(model.params)
    losses = []
    for _ in range(epochs):
        losses.append(np.mean([sgd_step(model, optimizer, X[i], y[i]) for i in rng.integers(0, len(X), len(X))]))
    return model, losses


def toy_data(n=200, random_state=0):
    """Inputs (n, 3) and labels +1 when the signal rises from x1 to x3, else -1."""
    X = np.random.default_rng(random_state).normal(size=(n, 3))
    return X, np.where(X[:, 2] > X[:, 0], 1, -1)


def main():
    w, v, x, y = (0.5, -0.3), (0.8, 0.4), (1.0, 0.5, -1.0), 1
    loss, backprop = gradients(mini_cnn(w, v), x, y)
    print(f"loss {loss:.6f}")
    for name, got, want in zip(("w1", "w2", "v1", "v2"), backprop, closed_form_gradients(w, v, x, y)):
        print(f"dl/d{name}: backprop {got:+.6f}   closed form {want:+.6f}")
    X, labels = toy_data()
    model, losses = train(X, labels)
    scores = model.forward(X.reshape(-1, 1, 3))[:, 0]
    print(f"SGD, 20 epochs: loss {losses[0]:.3f} -> {losses[-1]:.3f}, training accuracy "
          f"{np.mean(np.where(scores > 0, 1, -1) == labels):.3f}")


if __name__ == "__main__":
    main()
