"""tools/mutations/run.py (the planted-bug audit, not run by pytest) stays applicable: every
mutation's original text occurs exactly once in the file it patches, so a refactor that
moves the code fails here instead of leaving the audit silently stale."""
import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutations_run", ROOT / "tools" / "mutations" / "run.py")
mutations = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mutations      # dataclasses look their module up there
spec.loader.exec_module(mutations)


@pytest.mark.parametrize("m", mutations.MUTATIONS, ids=lambda m: m.name)
def test_mutation_applies_to_exactly_one_place(m):
    text = (ROOT / m.path).read_text(encoding="utf-8")
    assert text.count(m.old) == 1, f"{m.name}: {m.old!r} occurs {text.count(m.old)} times in {m.path}"
    assert m.new != m.old and m.expect in ("caught", "missed")
    for arg in m.tests:
        if arg.startswith("tests/"):
            assert (ROOT / arg).is_file(), f"{m.name}: no test file {arg}"
