"""Every option of every command, given bad values, ends in one short line on standard error and exit code 2
(or 1 for a value only the run can judge), never a traceback.

The options are found by walking the argparse parser, so an option added later is covered too: a value
option must have a checked type (:class:`~agegender.cli.common.Number`, ``PathArg``, ``KeyValue``,
``DataSpec``) or choices, whose bounds and roles give its bad values, or be listed in ``FREE_TEXT`` with the
bad values that only the run can refuse.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from _blocked import env_without, run_cli
from _synth import make_csv_dataset
from agegender.cli import build_parser, main
from agegender.cli.common import DataSpec, KeyValue, Number, PathArg

#: options whose values are free text or names only the run can judge: (command, dest) -> bad values
#: (placeholders: {missing} a folder that does not exist); [] where any text is a valid value
FREE_TEXT: dict[tuple[str, str], list[str]] = {
    ("predict", "inputs"): ["{missing}/x.jpg"],
    ("predict", "model"): ["{missing}/model.json", "no-such-model"],
    ("info", "model"): ["no-such-model"],
    ("batch", "inputs"): ["{missing}/x.jpg"],
    ("batch", "model"): ["no-such-model"],
    ("batch", "ray_address"): ["127.0.0.1:1"],  # with the local engine
    ("serve", "host"): ["0.0.0.1"],  # "this network" (0/8): never an address of a machine
    ("serve", "model"): ["no-such-model"],
    ("serve", "cors_origin"): [],
    ("video", "input"): ["{missing}/x.mp4"],
    ("video", "model"): [],  # loaded as for predict, after the video opens
    ("explain", "model"): ["no-such-model"],
    ("evaluate", "model"): ["no-such-model"],
    ("evaluate", "part"): [],
    ("evaluate", "label"): [],
    ("export", "runs"): ["{missing}/run"],
    ("export", "name"): [],
    ("export", "version"): [],
    ("export", "notes"): [],
    ("interpolate", "start"): [],
    ("clean", "cache"): [],  # built when missing
    ("clean", "model"): [],
}
#: commands that would keep running if a bad value were taken: checked in a process with a time limit
LONG_RUNNING = {"serve"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _value_actions(p: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for a in p._actions:
        if a.nargs != 0 and not isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
            yield a


def bad_values(action: argparse.Action) -> list[str]:
    """Bad values for a checked option, from its type's bounds or role (placeholders filled in by the test)."""
    t = action.type
    if action.choices:
        return ["nope"]
    if isinstance(t, Number):
        out = ["abc", "1.5" if t.kind is int else "nan"]
        if t.kind is float:
            out.append("inf")
        if t.lo is not None:
            out.append(f"{t.lo if t.lo_open else t.lo - 1:g}")
        if t.hi is not None:
            out.append(f"{t.hi + 1:g}")
        return out
    if isinstance(t, PathArg):
        return {"in-file": ["{missing}/x", "{dir}"], "in-dir": ["{missing}/x", "{file}"],
                "out-file": ["{missing}/x", "{dir}", "{file}/x"], "out-dir": ["{file}/x", "{file}"]}[t.role]
    if isinstance(t, KeyValue):
        return ["novalue", "=value"]
    if isinstance(t, DataSpec):
        return ["nocolon", "csv:{missing}/labels.csv", ":{dir}"]
    return []


def _cases() -> Iterator[tuple[str, str, str, str]]:
    for cmd, p in _commands().items():
        for a in _value_actions(p):
            checked = bad_values(a)
            for v in checked:
                yield cmd, a.dest, v, "parse"
            if not checked:
                for v in FREE_TEXT.get((cmd, a.dest), []):
                    yield cmd, a.dest, v, "run"


CASES = list(_cases())


@pytest.fixture(scope="module")
def place(tmp_path_factory, astronaut_path) -> dict[str, str]:
    """Real files for the parts of each command line that are not under test."""
    root = tmp_path_factory.mktemp("flags")
    (root / "a_dir").mkdir()
    (root / "a_file").write_text("a regular file\n")
    shutil.copy(astronaut_path, root / "face.png")
    (root / "config.yaml").write_text("name: x\n")
    (root / "run").mkdir()
    (root / "card.json").write_text("{}\n")
    (root / "split.csv").write_text("path,part\n")
    (root / "clip.mp4").write_bytes(b"not a video\n")
    labels = make_csv_dataset(root / "data", n=4, size=64)
    return {"root": str(root), "missing": str(root / "missing"), "dir": str(root / "a_dir"),
            "file": str(root / "a_file"), "img": str(root / "face.png"), "config": str(root / "config.yaml"),
            "run": str(root / "run"), "card": str(root / "card.json"), "split": str(root / "split.csv"),
            "video": str(root / "clip.mp4"), "spec": f"csv:{labels}"}


def base_argv(cmd: str, f: dict[str, str]) -> tuple[list[str], list[str]]:
    """(positionals, options): a command line of ``cmd`` with nothing wrong in it but what the test adds."""
    out = f"{f['root']}/out-{cmd}"
    return {
        "predict": ([f["img"]], []), "info": ([], []), "train": ([f["config"]], []), "cv": ([f["config"]], []),
        "cache": ([f["config"]], []),
        "export": ([f["run"]], ["--out", out + ".onnx"]),
        "interpolate": ([f["run"]], ["--alpha", "0.5", "--out", out]),
        "noise-ceiling": ([f["card"]], ["--percentile", "95"]),
        "clean": ([], ["--data", f["spec"], "--split", f["split"], "--cache", out + "-cache", "--out", out + ".csv"]),
        "twins": ([], ["--data", f["spec"], "--out", out + ".csv"]),
        "explain": ([f["img"]], ["--out", out]),
        "evaluate": ([], ["--data", f["spec"], "--out", out]),
        "serve": ([], ["--port", "0"]), "batch": ([f["img"]], ["--out", out]), "video": ([f["video"]], []),
    }[cmd]


def argv_with(cmd: str, dest: str, value: str, f: dict[str, str]) -> tuple[list[str], str]:
    """The command line with ``value`` given to ``dest``, and the name an error about it must mention."""
    p = _commands()[cmd]
    action = next(a for a in _value_actions(p) if a.dest == dest)
    value = value.format(**f)
    positionals, options = base_argv(cmd, f)
    if action.option_strings:
        return [cmd, *positionals, *options, action.option_strings[0], value], action.option_strings[0]
    index = [a.dest for a in _value_actions(p) if not a.option_strings].index(dest)
    positionals = [*positionals[:index], value, *positionals[index + 1:]]
    return [cmd, *positionals, *options], str(action.metavar or dest)


def assert_one_clean_line(err: str) -> None:
    assert "Traceback" not in err, err
    assert "unexpected" not in err, err  # the command line's last-resort handler: a bug, not a message
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 4 and all(len(ln) < 400 for ln in lines), err


@pytest.mark.parametrize("cmd, dest, value", [c[:3] for c in CASES if c[3] == "parse"])
def test_bad_value_is_refused_before_any_work(cmd, dest, value, place, capsys):
    argv, name = argv_with(cmd, dest, value, place)
    with pytest.raises(SystemExit) as exc:  # refused while parsing: no command runs
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert_one_clean_line(err)
    assert len(err.strip().splitlines()) == 1 and name in err, err


@pytest.mark.parametrize("cmd, dest, value", [c[:3] for c in CASES if c[3] == "run"])
def test_bad_value_the_run_refuses(cmd, dest, value, place, capsys, monkeypatch):
    argv, _ = argv_with(cmd, dest, value, place)
    if cmd in LONG_RUNNING:
        proc = run_cli(*argv, cwd=Path(place["root"]), timeout=120)
        code, err = proc.returncode, proc.stderr
    else:
        monkeypatch.chdir(place["root"])
        code = main(argv)
        err = capsys.readouterr().err
    assert code in (1, 2), (argv, err)
    assert_one_clean_line(err)


def test_every_value_option_is_checked_or_listed():
    """A new option needs a checked type (or choices), or an entry in FREE_TEXT saying what a bad value is."""
    unclassified = [(cmd, a.dest) for cmd, p in _commands().items() for a in _value_actions(p)
                    if not bad_values(a) and (cmd, a.dest) not in FREE_TEXT]
    assert unclassified == []
    stale = set(FREE_TEXT) - {(cmd, a.dest) for cmd, p in _commands().items() for a in _value_actions(p)}
    assert stale == set()


def test_the_issue_examples_in_a_real_process(place, tmp_path):
    """The command lines of the report, as a user runs them: exit code and one line, nothing written."""
    img = place["img"]
    for args, code, words in [
        (["predict", img, "--score-threshold", "2"], 2, "--score-threshold"),
        (["predict", img, "--score-threshold", "-0.5"], 2, "--score-threshold"),
        (["predict", img, "--min-face-size", "-5"], 2, "--min-face-size"),
        (["predict", img, "--output", str(tmp_path / "no" / "out.csv")], 2, "folder does not exist"),
        (["predict", img, "--annotate", place["file"] + "/ann"], 2, "--annotate"),
    ]:
        proc = run_cli(*args, cwd=tmp_path, timeout=120)
        assert proc.returncode == code, proc.stderr
        assert proc.stdout == ""
        assert_one_clean_line(proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_evaluate_without_matplotlib_stops_before_predicting(place, tmp_path):
    out = tmp_path / "eval"
    proc = run_cli("evaluate", "--data", place["spec"], "--out", str(out),
                   env=env_without(tmp_path / "site", "matplotlib"), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert_one_clean_line(proc.stderr)
    assert "matplotlib" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()  # nothing predicted, nothing written


def test_debug_after_the_command_shows_the_traceback(capsys):
    assert main(["info", "--model", "no-such-model"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    for argv in (["--debug", "info", "--model", "no-such-model"], ["info", "--model", "no-such-model", "--debug"]):
        with pytest.raises(Exception, match="not found"):
            main(argv)
