"""The tables of the README and docs/ that mirror code are what the code says (regenerate them
with ``python tools/docs_tables.py``), and the generator reads the real table: a changed
published figure shows up as a difference."""
import dataclasses

from tools import docs_tables
from resnest.gluon.pretrained import PRETRAINED


def test_every_generated_table_matches_the_code():
    assert docs_tables.differing() == []
    names = [name for path in docs_tables.markdown_files()
             for name in docs_tables._BLOCK.findall(open(path).read())]
    assert names, "no generated table found in the README or docs/"


def test_a_changed_published_figure_makes_the_table_differ(monkeypatch):
    before = docs_tables.classifiers_table()
    info = PRETRAINED["resnest50"]
    monkeypatch.setitem(PRETRAINED, "resnest50",
                        dataclasses.replace(info, metrics=(("top1", 12.34), ("top5", 95.42))))
    after = docs_tables.classifiers_table()
    assert "| 81.04 |" in before and "| 12.34 |" in after and before != after
