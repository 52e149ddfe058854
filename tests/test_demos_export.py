"""tools/export_demos.py without the optional minari package: one clear error line (runs everywhere)."""
from conftest import run_cli


def test_missing_minari_is_one_error_line(tmp_path):
    """Without minari installed (simulated by blocking its import) the tool says how to install it."""
    code = ("import sys, runpy; sys.modules['minari'] = None;"
            f"sys.argv = ['tools/export_demos.py', '--format', 'minari', '--env', 'hopper', "
            f"'--root', {str(tmp_path)!r}];"
            "runpy.run_path('tools/export_demos.py', run_name='__main__')")
    r = run_cli("-c", code, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith("error: ")
    assert "pip install 'minari[hdf5]'" in r.stderr and not any(tmp_path.iterdir())
