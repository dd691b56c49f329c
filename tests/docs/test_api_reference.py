"""The API reference builds with pdoc (docs/api/build.py) and documents every public name.

A module that fails to import, a name in an ``__all__`` that does not resolve, or any pdoc warning
beyond the known harmless one makes the build exit with status 1 and fails this test.
"""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "docs" / "api" / "build.py"


def _load_build():
    spec = importlib.util.spec_from_file_location("api_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def test_build(tmp_path):
    """Builds the reference once (one test, not a fixture shared by several: pytest-xdist would
    build it once per worker) and checks the result."""
    site = _build(tmp_path / "api")
    _check_pages(site)
    _check_key_names_are_documented(site)
    for module in build.PUBLIC:
        _check_every_public_name_has_an_entry(site, module)
    _check_docstrings_are_rendered(site)


def _build(out):
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(BUILD), str(out)], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=600)
    assert run.returncode == 0, f"docs/api/build.py failed:\n{run.stdout}\n{run.stderr}"
    assert "API reference written to" in run.stdout
    return out


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="([A-Za-z_][\w.]*)"', page.read_text(encoding="utf-8")))


def _page(site: Path, module: str) -> Path:
    return site / (module.replace(".", "/") + ".html")


def _check_pages(site):
    for module in build.PUBLIC:
        assert _page(site, module).is_file(), module
    assert (site / "index.html").is_file() and (site / "search.js").is_file()
    # The implementation packages are not pages of their own.
    assert not (site / "senryu" / "core.html").exists()
    assert not (site / "senryu" / "layers").exists()


def _check_key_names_are_documented(site):
    top = _anchors(_page(site, "senryu"))
    for name in ["transform", "transform_with_state", "without_apply_rng", "Module",
                 "get_parameter", "get_state", "set_state", "next_rng_key", "Linear", "Conv2D",
                 "MaxPool", "Flatten", "Embed", "LayerNorm", "BatchNorm", "MultiHeadAttention",
                 "LSTM", "dynamic_unroll", "vmap", "scan", "jit", "layer_stack", "JaxUsageError",
                 "Linear.__call__", "Module.params_dict"]:
        assert name in top, f"hk.{name} missing from senryu.html"
    assert "MLP" in _anchors(_page(site, "senryu.nets"))
    assert "VarianceScaling" in _anchors(_page(site, "senryu.initializers"))
    experimental = _anchors(_page(site, "senryu.experimental"))
    assert {"tabulate", "override_jax_transforms"} <= experimental


def _check_every_public_name_has_an_entry(site, module):
    names = build.public_names(importlib.import_module(module))
    assert names, module
    missing = sorted(set(names) - _anchors(_page(site, module)))
    assert not missing, f"{module}: no entry for {missing}"


def _check_docstrings_are_rendered(site):
    html = _page(site, "senryu").read_text(encoding="utf-8")
    # Leave out the docstrings as written, in the source listings.
    text = re.sub(r'<span class="sd">.*?</span>', "", html, flags=re.DOTALL)
    # Google-style sections become headings, doctest examples highlighted code.
    assert "Args:" not in text
    assert 'id="arguments">Arguments:' in text
    assert '<span class="gp">&gt;&gt;&gt; </span>' in text


def test_known_warnings_only():
    harmless = ("Error parsing type annotation ForwardRef('Optional[str]') for "
                "senryu.core.params.GetterContext.__init__. Import of Optional failed: name "
                "'Optional' is not defined (/x/pdoc/doc_types.py:136)")
    broken = "Found 'Linaer' in senryu.__all__, but it does not resolve: No module named 'x'"
    assert any(p.search(harmless) for p in build.KNOWN_WARNINGS)
    assert not any(p.search(broken) for p in build.KNOWN_WARNINGS)


def test_public_names_skip_annotation_imports():
    import senryu.config

    names = build.public_names(senryu.config)
    assert "set" in names and "context" in names
    assert not {"Any", "Callable", "Iterator", "annotations"} & set(names)


def test_bad_arguments(capsys):
    assert build.main(["--help"]) == 2
    assert "usage: build.py [OUTPUT_DIR]" in capsys.readouterr().err
