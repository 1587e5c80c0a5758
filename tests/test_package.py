import subprocess
import sys

import scaleguard


def test_all_matches_exported_names():
    # dir(), not vars(): the table readers are loaded lazily (PEP 562) but are exports all the same.
    public = {name for name in dir(scaleguard) if not name.startswith("_")} | {"__version__"}
    # Subpackages imported as a side effect are modules, not exports.
    public = {name for name in public
              if type(getattr(scaleguard, name)).__name__ != "module"}
    assert set(scaleguard.__all__) == public
    assert sorted(scaleguard.__all__) == list(scaleguard.__all__)


def test_version_is_a_string():
    assert scaleguard.__version__.count(".") == 2


def test_core_imports_no_extras():
    """The core and the CLI must not import heavy optional extras at import time."""
    code = (
        "import sys, scaleguard, scaleguard.cli, scaleguard.io, scaleguard.units;"
        "heavy = {'torch', 'ray', 'fastapi', 'uvicorn', 'pynvml', 'codecarbon', 'lightning',"
        " 'transformers', 'playwright', 'selenium'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
