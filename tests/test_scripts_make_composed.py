"""scripts/dataset/make_composed.py end to end: writes the set, says what it wrote, leaves a
complete folder alone, and turns a bad request into one sentence with exit code 2."""
import json
import os
import runpy
import subprocess
import sys

from _errors import one_sentence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "dataset", "make_composed.py")
ARGS = ["--size", "96", "--train-images", "4", "--val-images", "3", "--object-size", "20", "48"]


def test_writes_reports_and_is_idempotent(tmp_path, capsys):
    main = runpy.run_path(SCRIPT)["main"]
    out = str(tmp_path / "set")
    assert main([out] + ARGS) == 0
    printed = capsys.readouterr().out
    for split, folder in (("train", "training"), ("val", "validation")):
        with open(os.path.join(out, "annotations", f"instances_{split}.json")) as fjson:
            coco = json.load(fjson)
        images = sorted(os.listdir(os.path.join(out, "images", folder)))
        assert images == sorted(img["file_name"] for img in coco["images"])
        assert f"{split}: {len(images)} images, {len(coco['annotations'])} objects" in printed
    assert main([out] + ARGS) == 0 and "already complete" in capsys.readouterr().out


def test_a_refusal_is_one_sentence_and_exit_code_2(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    env = dict(os.environ, PYTHONPATH=REPO)
    run = subprocess.run([sys.executable, SCRIPT, str(out)] + ARGS, capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ")
    one_sentence(run.stderr.strip()[len("error: "):], str(out))
