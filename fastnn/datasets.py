"""Small real data sets for examples, tests and the command line (they need scikit-learn)."""
import numpy as np


def load_digits(test_size=0.25, random_state=0):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), split for training.

    Pixels are divided by 16 so they lie in [0, 1] (every value k / 16 is exact in binary floating
    point). The split is sklearn.model_selection.train_test_split(test_size, random_state).

    Returns
    -------
    X_train, X_test : (n_train, 64), (n_test, 64) float64
    y_train, y_test : (n_train,), (n_test,) int64 labels 0..9
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    return tuple(train_test_split(X, y, test_size=test_size, random_state=random_state))


DATASETS = {"digits": load_digits}
