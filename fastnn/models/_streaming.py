"""Kernel perceptron training without the n x n Gram matrix: kernel rows on demand in an LRU cache.

The compiled epochs predict from running scores = alpha @ K and, on a mistake on example i, add
row i of K to the true class's scores and subtract it from the predicted class's. Only the rows of
mistakes are ever needed, so `streaming_epoch` makes exactly those updates, in the same order and
with the same additions, asking a `KernelRowCache` for each row. The cache is LIBSVM's idea (svm.cpp,
class Cache): rows kept in a memory budget given in MiB, least recently used evicted first. A miss
computes a block of rows in one call of fastnn.gram_rows (one pass over X for many rows): the
missing row and the next examples of the epoch that the current scores misclassify, the likely next
mistakes (measured: a row costs ~30x less in a block of 512 than alone, so even guesses of which
only a fraction are used pay; with a cache as large as K each row is still computed at most once).
"""
import numpy as np

from ..gram import MIB, kernel_rows

# Rows computed per miss, at most: one gram_rows call reads all of X once, so a block amortizes that.
BLOCK_ROWS = 512
# How far past a miss the epoch's order is searched for likely mistakes to compute in the same block.
LOOKAHEAD = 4 * BLOCK_ROWS
# Examples predicted per vectorized search for the next mistake (grows while none is found).
FIRST_WINDOW = 32


class KernelRowCache:
    """Rows of the Gram matrix of X, computed on demand by gram_rows and kept in `capacity_mib` MiB.

    row(i, upcoming) returns K[i] (n,) of X's dtype (a view into the cache, valid until the next call);
    on a miss it computes K[i] and, in the same gram_rows call, the rows of the uncached examples
    in `upcoming` (up to a block), evicting the least recently used rows to make room.

    Attributes: slots (rows it can hold, at most n), rows_computed (every row computed so far).
    """

    def __init__(self, X, capacity_mib, gram_params, working_memory):
        n, itemsize = X.shape[0], X.dtype.itemsize
        self.slots = int(min(n, capacity_mib * MIB // (n * itemsize)))
        if self.slots < 1:
            raise ValueError(f"kernel_cache={capacity_mib!r} MiB cannot hold one kernel row of {n} training "
                             f"examples ({n * itemsize / MIB:.3g} MiB); raise kernel_cache")
        # Validates X once; the compiled backends keep X centered in float64 between calls.
        self.rows_of = kernel_rows(X, working_memory=working_memory, keep_centered=True, **gram_params)
        self.block = max(1, min(BLOCK_ROWS, self.slots // 4))
        self.data = np.empty((self.slots, n), dtype=X.dtype)
        self.slot_of = np.full(n, -1, dtype=np.int64)  # example -> slot, -1 when not cached
        self.owner = np.full(self.slots, -1, dtype=np.int64)  # slot -> example, -1 when free
        self.last_used = np.zeros(self.slots, dtype=np.int64)
        self.clock = 0
        self.used = 0
        self.rows_computed = 0

    def row(self, i, upcoming=()):
        """K[i] (n,), computing it (with uncached `upcoming` examples, up to a block) on a miss."""
        slot = self.slot_of[i]
        if slot < 0:
            self._fill(self._block(i, upcoming))
            slot = self.slot_of[i]
        self.clock += 1
        self.last_used[slot] = self.clock
        return self.data[slot]

    def _block(self, i, upcoming):
        """i and then the first uncached examples of `upcoming`, without repeats, up to self.block."""
        wanted = [int(i)]
        seen = {int(i)}
        for j in upcoming:
            if len(wanted) == self.block:
                break
            j = int(j)
            if j not in seen and self.slot_of[j] < 0:
                seen.add(j)
                wanted.append(j)
        return np.array(wanted, dtype=np.int64)

    def _fill(self, examples):
        if self.used + len(examples) <= self.slots:  # free slots, in one block: write the rows in place
            slots = self._free_slots(len(examples))
            self._rows(examples, out=self.data[slots[0]:slots[-1] + 1])
        else:
            rows = self._rows(examples)
            slots = self._free_slots(len(examples))
            evicted = self.owner[slots]
            self.slot_of[evicted[evicted >= 0]] = -1
            self.data[slots] = rows
        self.owner[slots] = examples
        self.slot_of[examples] = slots
        self.clock += 1
        self.last_used[slots] = self.clock
        self.rows_computed += len(examples)

    def _rows(self, examples, out=None):
        """K[examples] (len(examples), n): the columns of cached examples copied from their rows (K is
        symmetric, as gram(X) makes it), the others computed, so a pair is computed once while both
        rows stay cached. Call before evicting anything for these rows (it reads the cached rows)."""
        cached = np.flatnonzero(self.slot_of >= 0)
        if cached.size < self.slot_of.shape[0] // 8:  # too few to pay for the gather
            if out is None:
                return self.rows_of(examples)
            out[...] = self.rows_of(examples)
            return out
        K = np.empty((examples.shape[0], self.slot_of.shape[0]), dtype=self.data.dtype) if out is None else out
        K[:, cached] = self.data[np.ix_(self.slot_of[cached], examples)].T
        missing = np.flatnonzero(self.slot_of < 0)
        K[:, missing] = self.rows_of(examples, missing)
        return K

    def _free_slots(self, count):
        """`count` slots: unused ones first, then the least recently used."""
        fresh = np.arange(self.used, min(self.slots, self.used + count))
        self.used += fresh.size
        need = count - fresh.size
        if need == 0:
            return fresh
        age = self.last_used.copy()
        age[fresh] = np.iinfo(np.int64).max  # taken by this block already
        return np.concatenate([fresh, np.argpartition(age, need - 1)[:need]])


def _likely_mistakes(scores, y, examples):
    """The examples that the current scores misclassify, most clearly wrong first (the true class's
    score furthest below the best one): those stay wrong after the updates before they come up."""
    upcoming = scores[:, examples]
    margin = upcoming[y[examples], np.arange(examples.shape[0])] - upcoming.max(axis=0)
    wrong = np.flatnonzero(margin < 0)
    return examples[wrong[np.argsort(margin[wrong], kind="stable")]]


def streaming_epoch(cache, y, order, alpha, scores):
    """One epoch of the kernel perceptron (Algorithm 2) with kernel rows from `cache`.

    y (n,) int64 labels, order (m,) int64 example indices, alpha (C, n) and scores (C, n) = alpha @ K
    updated in place as the compiled epochs do: for each i in order, yhat = argmax_c scores[c, i]
    (ties: lowest c); on a mistake alpha[yhat, i] -= 1, alpha[y_i, i] += 1, and row K[i] is
    subtracted from scores[yhat] and added to scores[y_i]. The next mistake is found by predicting a
    window of upcoming examples at once (the scores change only at mistakes). Returns the mistakes.
    """
    mistakes, t, window = 0, 0, FIRST_WINDOW
    while t < order.shape[0]:
        examples = order[t:t + window]
        predicted = np.argmax(scores[:, examples], axis=0)
        wrong = np.flatnonzero(predicted != y[examples])
        if wrong.size == 0:
            t += examples.shape[0]
            window *= 2
            continue
        i, yhat, label = examples[wrong[0]], predicted[wrong[0]], y[examples[wrong[0]]]
        t += wrong[0] + 1
        if cache.slot_of[i] < 0:
            ahead = order[t:t + LOOKAHEAD]
            # A cache that holds every row can take the epoch's next examples in order: each row is then
            # computed once, in full blocks; a smaller one takes only likely mistakes, to keep its rows.
            row = cache.row(i, ahead if cache.slots == cache.slot_of.shape[0] else _likely_mistakes(scores, y, ahead))
        else:
            row = cache.row(i)
        alpha[yhat, i] -= 1
        alpha[label, i] += 1
        scores[yhat] -= row
        scores[label] += row
        mistakes += 1
        window = FIRST_WINDOW
    return mistakes
