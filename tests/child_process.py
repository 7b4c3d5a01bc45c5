"""How tests start child Python processes: a child must import the same fastnn as the test process.

Under CI that is the installed package, while the working directory is the source checkout, which has
no compiled modules: `python -c ...` puts the working directory first on sys.path and would import the
source tree instead (and lose the Cython backend). Children therefore run in a neutral directory with
the imported fastnn's parent (and tests/, for the test helpers) first on PYTHONPATH.
"""
import os
import tempfile

import fastnn

FASTNN_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
NEUTRAL_CWD = tempfile.gettempdir()


def child_env(base=None, **extra):
    """os.environ (or `base`) with PYTHONPATH leading to this process's fastnn, plus `extra` variables."""
    env = dict(os.environ if base is None else base)
    inherited = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    env["PYTHONPATH"] = os.pathsep.join([FASTNN_PARENT, TESTS_DIR] + inherited)
    env.update(extra)
    return env
