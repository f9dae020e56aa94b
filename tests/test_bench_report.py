"""benchmarks/run_all.py: the RESULTS.md generator, on small synthetic result files in a temp folder.

Every number below is made up for these formatting tests; none is a benchmark result.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run_all  # noqa: E402
from benchmarks.bench_report import category_tables, markdown, summary_from_json, write_json  # noqa: E402

CARRIED_TEXT = "### Synthetic carried-over section\n\n| what | value |\n|---|---:|\n| made-up GPU thing | 123.4 |\n"


def _row(family: str, clips: int, **vals: float) -> dict:
    row = {"family": family, "clips": clips, "errors": 0, "kbps": vals.pop("kbps"), "notes": {}}
    for k in ("pesq_wb", "pesq_nb", "stoi", "visqol", "mel_distance", "si_sdr"):
        v = vals.get(k, math.nan)
        row[k] = v
        row[k + "_n"] = vals.get(k + "_n", 0 if math.isnan(v) else clips)
    return row


def _summary() -> dict:
    return {
        "speech": {
            "ours@k8": _row("ours", 2, kbps=1.234, pesq_wb=1.5, pesq_nb=1.75, stoi=0.6, visqol=2.0,
                            mel_distance=0.5, si_sdr=-20.04),
            "opus@6kbps": _row("opus", 2, kbps=6.5, pesq_wb=2.0, pesq_nb=2.5, stoi=0.9, visqol=math.nan,
                               mel_distance=1.25, si_sdr=math.inf),
        },
        "sound": {
            "ours@k8": _row("ours", 2, kbps=1.1, pesq_wb=1.2, pesq_nb=1.6, stoi=0.2, stoi_n=1, visqol=3.0,
                            mel_distance=0.4, si_sdr=-28.0),
            "opus@6kbps": _row("opus", 2, kbps=4.9, pesq_wb=1.6, pesq_nb=2.5, stoi=0.35, visqol=2.6,
                               mel_distance=1.3, si_sdr=-7.0),
        },
    }


def _write_results(d: Path, *, probe_model: str = "model-under-test") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    meta = {"date": "2000-01-01T00:00:00", "source": "synthetic.tsv", "n_clips": 4, "mono": "Mono note.",
            "metrics": "Metric note.", "visqol": "ViSQOL note.", "random_weights_smoke": False,
            "codecs": ["ours@k8", "opus@6kbps"], "ours_model_id": "model-under-test", "torch_threads": 1}
    write_json(d / "reconstruction.json", {
        "meta": meta, "summary": _summary(), "clips": [],
        "unavailable": [{"label": "mimi@8q", "reason": "weights not available here (kyutai/mimi)"}]})
    (d / "quality_vs_bitrate_speech.png").write_bytes(b"\x89PNG synthetic")
    (d / "file_size.json").write_text(json.dumps({
        "model_id": "model-under-test", "date": "2000-01-01", "has_entropy_tables": True,
        "results": {"8_codebooks": {"raw_bps": 1000.0, "packed_bps": 1100.0, "rans_bps": 900.0, "seconds": 120.0,
                                    "clips": 4}}}))
    (d / "probe.json").write_text(json.dumps({
        "model_id": probe_model, "train_clips": 20, "test_clips": 1000, "test_speakers": ["a", "b"],
        "classifier": "mlp-256", "date": "2000-01-01", "accuracy": {"reasoning": 0.25, "recon": 0.5, "logmel": 0.75}}))
    bench = {"batch": 1, "peak_rss_mib": 10.0, "enc_rtf": 11.0, "dec_rtf": 22.0, "cpu_per_wall": 0.5,
             "tokens_per_audio_s": 141.0}
    (d / "speed.json").write_text(json.dumps({
        "machine": {"cpu": "Synthetic CPU", "cores": 2, "cores_usable": 2, "threads": 1, "device": "cpu",
                    "torch": "0.0", "transformers": "0.0", "python": "3.x", "date": "2000-01-01T00:00:00",
                    "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [1.0, 1.0, 1.0]},
        "args": {"device": "cpu", "threads": 1, "codecs": "ours,encodec", "seconds": 10.0, "runs": 3},
        "results": [{"codec": "ours", "weights": "random", "params_m": 12.5, "kbps": 1.48, "b1": bench,
                     "b16": {**bench, "enc_rtf": 33.0}, "latency_ms": "110 (algorithmic)"}]}))
    (d / "lm_speed.json").write_text(json.dumps({
        "machine": {"torch": "0.0", "threads": 1}, "args": {"steps": 3, "gen_frames": 48, "gen_batch": 8},
        "results": [{"preset": "tiny", "device": "cpu", "params_M": 8.26, "train_tokens_per_s": 1234.4,
                     "gen_b1_frames_per_s": 36.04, "gen_b8_frames_per_s": 137.0}]}))
    record = {
        "started": "2000-01-01T00:00:00+00:00", "total_seconds": 1200.0,
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),  # after the files above
        "command": "python benchmarks/run_all.py --skip file_size", "quick": False,
        "machine": {"cpu": "Synthetic CPU", "cores": 2, "cores_usable": 2, "ram_gib": 23.5, "torch": "0.0",
                    "python": "3.x", "stage_threads": 1},
        "load": {"loadavg_start": [1.11, 1.22, 1.33], "other_busy_cores_start": 0.98, "loadavg_end": [2.0, 2.0, 2.0]},
        "default_model": {"model_id": "model-under-test", "source": "installed default",
                          "same_architecture_as_default_config": True},
        "stages": [
            {"name": "reconstruction", "status": "ran", "seconds": 600.0, "returncode": 0,
             "command": "OMP_NUM_THREADS=1 python benchmarks/reconstruction.py --codecs ours,classical,neural",
             "output": "reconstruction.json", "other_busy_cores": 1.0},
            {"name": "file_size", "status": "skipped", "seconds": None, "returncode": None, "command": None,
             "output": "file_size.json", "other_busy_cores": None},
            {"name": "probe", "status": "failed", "seconds": 6.0, "returncode": 3, "command": "x",
             "output": "probe.json", "other_busy_cores": 0.9},
            {"name": "speed", "status": "ran", "seconds": 300.0, "returncode": 0, "command": "y",
             "output": "speed.json", "other_busy_cores": 1.1},
            {"name": "lm_speed", "status": "ran", "seconds": 60.0, "returncode": 0, "command": "z",
             "output": "lm_speed.json", "other_busy_cores": 1.0}]}
    (d / run_all.RECORD).write_text(json.dumps(record))
    carried = d / "carried_over.md"
    carried.write_text(CARRIED_TEXT)
    return carried


def _section(text: str, heading: str) -> str:
    """From ``heading`` (a whole line) to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.split("\n")
    i = lines.index(heading)
    out = [lines[i]]
    for line in lines[i + 1:]:
        if line.startswith("#") and len(line.split(" ")[0]) <= len(level) and set(line.split(" ")[0]) == {"#"}:
            break
        out.append(line)
    return "\n".join(out)


def test_report_has_header_every_section_and_the_carried_over_part(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results)
    text = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)

    head = text.split("## Reconstruction quality")[0]
    assert "| command | `python benchmarks/run_all.py --skip file_size` |" in head
    assert "| machine | Synthetic CPU, 2 cores (2 usable), 23.5 GiB RAM |" in head
    assert "| other load present | yes — other processes kept 0.98 of 2 cores busy" in head
    assert "at start 1.11, 1.22, 1.33; at end 2.00, 2.00, 2.00" in head
    assert "| default model | `model-under-test` (installed default)" in head
    assert "(20.0 min)" in head and "| measured | 2000-01-01T00:00:00+00:00 → " in head
    assert "| reconstruction | ran | 10.0 min | 1.00 | `results/reconstruction.json` |" in head
    assert "| file_size | skipped | — | — | `results/file_size.json` |" in head
    assert "QUICK RUN" not in text

    order = ["## Reconstruction quality (eval set, 4 clips)", "## File size (eval clips, mono, 4 files, 2.0 min)",
             "## Understanding probe (FSDD spoken digits, held-out speakers `a`, `b`)",
             "## Speed (CPU, 1 thread(s), ours,encodec)", "## uniaudio_lm speed",
             "## Carried over (not re-run by this command)"]
    pos = [text.index("\n" + h + "\n") for h in order]
    assert pos == sorted(pos)

    carried_part = text[pos[-1]:]
    assert CARRIED_TEXT.rstrip("\n") in carried_part and text.count("made-up GPU thing") == 1
    assert "[`carried_over.md`](results/carried_over.md)" in carried_part


def test_reconstruction_tables_per_category_with_unavailable_rows_and_plot_links(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results)
    text = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)
    rec = _section(text, "## Reconstruction quality (eval set, 4 clips)")
    assert "Measured by this command: `OMP_NUM_THREADS=1 python benchmarks/reconstruction.py" in rec
    assert "Model: `model-under-test`." in rec
    speech, sound = _section(rec, "### speech"), _section(rec, "### sound")
    assert "| ours@k8 | 1.50 | 1.75 | 0.600 | 2.00 | 0.500 | -20.0 | 1.23 | 2 |" in speech
    assert "| opus@6kbps | 2.00 | 2.50 | 0.900 | — | 1.250 | ∞ | 6.50 | 2 |" in speech
    assert "| ours@k8 | 1.20 | 1.60 | 0.200 (1/2) | 3.00 | 0.400 | -28.0 | 1.10 | 2 |" in sound
    for table in (speech, sound):
        assert "| mimi@8q | weights not available here (kyutai/mimi) |" + " — |" * 7 in table
        assert table.index("| ours@k8 |") < table.index("| opus@6kbps |") < table.index("| mimi@8q |")
    assert "[speech](results/quality_vs_bitrate_speech.png)" in rec
    assert "[sound](" not in rec  # no PNG for it, so no link


def test_other_sections_format_and_label_skipped_failed_and_foreign_model(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results, probe_model="some-older-model")
    text = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)
    size = _section(text, "## File size (eval clips, mono, 4 files, 2.0 min)")
    assert "| 8 | 1000 | 1100 (+10.0%) | 900 (-10.0%) | 18.2% |" in size  # a file_size.json of an older build
    assert "Skipped in this run (`--skip`): results file dated 2000-01-01, not re-run" in size
    probe = _section(text, "## Understanding probe (FSDD spoken digits, held-out speakers `a`, `b`)")
    assert "**The stage failed in this run** (exit code 3)" in probe
    assert "Model: `some-older-model` — **not the default model `model-under-test`**." in probe
    assert "| features | `mean-max` |" in probe and "Digit accuracy on the 1,000 clips" in probe  # older file
    assert "| reasoning tokens | 25.0% |" in probe and "| log-mel (unquantised) | 75.0% |" in probe
    speed = _section(text, "## Speed (CPU, 1 thread(s), ours,encodec)")
    row = "| ours | random | 12.5 | 1.48 | 141 | 11.0 | 22.0 | 33.0 | 22.0 | 10 / 10 | 110 (algorithmic) | 0.50 |"
    assert row in speed
    lm = _section(text, "## uniaudio_lm speed")
    assert "| tiny | cpu | 8.3 M | 1,234 | 36.0 | 137.0 |" in lm and "batch of 8" in lm


def test_missing_results_are_reported_not_invented(tmp_path: Path) -> None:
    carried = tmp_path / "carried.md"
    carried.write_text(CARRIED_TEXT)
    text = run_all.render(tmp_path / "empty", tmp_path / "RESULTS.md", carried=carried,
                          default_model={"model_id": "model-under-test"})
    for name in ("reconstruction", "file_size", "probe", "speed", "lm_speed"):
        assert f"_No results file `results/{name}.json` yet._" in text
    assert "there is no run record" in text and "Default model installed now: `model-under-test`." in text
    generated = text.split("## Carried over")[0]
    assert not [line for line in generated.split("\n") if line.startswith("| ") and any(c.isdigit() for c in line)]


def test_from_results_cli_writes_the_report_without_running_anything(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results)
    out = tmp_path / "docs" / "R.md"
    before = {p.name: p.read_bytes() for p in results.iterdir()}
    assert run_all.main(["--from-results", "--results-dir", str(results), "--out", str(out),
                         "--carried-over", str(carried)]) == 0
    text = out.read_text()
    assert "no benchmark was re-run" in text and "`python benchmarks/run_all.py --from-results" in text
    assert "[speech](../results/quality_vs_bitrate_speech.png)" in text  # links relative to the report
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before


def test_reconstruction_json_round_trip_gives_the_same_tables_as_reconstruction_md(tmp_path: Path) -> None:
    summary = _summary()
    unavailable = [{"label": "xcodec@2kbps", "reason": "weights not available here (x)"}]
    labels = ["ours@k8", "opus@6kbps"]
    write_json(tmp_path / "r.json", {"summary": summary})
    back = summary_from_json(json.loads((tmp_path / "r.json").read_text())["summary"])
    tables = "\n".join(category_tables(back, unavailable, labels, level=2))
    meta = {"source": "s", "n_clips": 4, "mono": "m", "metrics": "x", "visqol": "v"}
    md = markdown(summary, unavailable, labels, meta)
    assert tables in md


def test_quick_mode_never_targets_the_committed_results(tmp_path: Path) -> None:
    a = run_all.parse_args(["--quick"])
    assert a.results_dir != run_all.RESULTS_DIR.resolve() and a.out != run_all.RESULTS_MD.resolve()
    assert a.out.parent == a.results_dir
    for bad in (["--quick", "--results-dir", str(run_all.RESULTS_DIR)], ["--quick", "--out", str(run_all.RESULTS_MD)]):
        with pytest.raises(SystemExit):
            run_all.parse_args(bad)
    a = run_all.parse_args([])
    assert a.results_dir == run_all.RESULTS_DIR.resolve() and a.out == run_all.RESULTS_MD.resolve()
    with pytest.raises(SystemExit):
        run_all.parse_args(["--skip", "speed,nonsense"])
    assert run_all.parse_args(["--skip", "speed, probe"]).skip == ["speed", "probe"]


def test_stage_commands_run_the_existing_scripts_with_the_documented_settings(tmp_path: Path) -> None:
    a = run_all.parse_args(["--results-dir", str(tmp_path), "--threads", "1"])
    rec = run_all.stage_command("reconstruction", a, tmp_path, None)
    assert rec[1].endswith("benchmarks/reconstruction.py")
    assert rec[rec.index("--codecs") + 1] == "ours,classical,neural"
    assert rec[rec.index("--ours-codebooks") + 1] == "8,4" and rec[rec.index("--out") + 1] == str(tmp_path)
    speed = run_all.stage_command("speed", a, tmp_path, None)
    assert speed[speed.index("--codecs") + 1] == "ours,encodec" and speed[speed.index("--threads") + 1] == "1"
    assert "--runs" not in speed  # speed.py's defaults (batch 1 and 16, 3 runs) in a full run
    for stage in run_all.STAGES:
        cmd = run_all.stage_command(stage, a, tmp_path, None)
        assert str(tmp_path) in " ".join(cmd)  # every stage writes into the results folder
    q = run_all.parse_args(["--quick", "--results-dir", str(tmp_path)])
    assert "--max-per-digit" in run_all.stage_command("probe", q, tmp_path, None)
    assert "--cv" in run_all.stage_command("probe", a, tmp_path, None)
    shown = run_all.display_command(rec, 1)
    assert shown.startswith("OMP_NUM_THREADS=1 python benchmarks/reconstruction.py --codecs ours,classical,neural")


def test_quick_manifest_keeps_a_few_eval_clips_per_category_with_absolute_paths(tmp_path: Path) -> None:
    man = tmp_path / "data" / "eval" / "manifest.tsv"
    man.parent.mkdir(parents=True)
    rows = ["path\tcategory\tusage"]
    rows += [f"eval/speech/s{i}.flac\tspeech\teval" for i in range(4)]
    rows += ["eval/visqol_anchors/a.flac\tspeech\teval", "eval/music/m0.flac\tmusic\ttrain",
             "eval/music/m1.flac\tmusic\teval-internal-only", "eval/sound/x.flac\tsound\teval"]
    man.write_text("\n".join(rows) + "\n")
    out = run_all.quick_manifest(man, tmp_path / "q.tsv", per_category=2)
    got = [line.split("\t") for line in out.read_text().strip().split("\n")[1:]]
    root = man.resolve().parent.parent
    assert [r[0] for r in got] == [str(root / p) for p in ("eval/speech/s0.flac", "eval/speech/s1.flac",
                                                             "eval/music/m1.flac", "eval/sound/x.flac")]


def test_other_load_is_machine_busy_time_minus_our_own() -> None:
    assert run_all.other_busy_cores((10.0, 100.0), (14.0, 104.0), 2.0, 1.0) == pytest.approx(1.5)
    assert run_all.other_busy_cores((10.0, 100.0), (11.0, 104.0), 2.0, 3.0) == 0.0
    assert run_all.other_busy_cores(None, (1.0, 2.0), 2.0, 0.0) is None


def test_a_results_file_rewritten_after_the_recorded_run_is_not_attributed_to_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results)
    later = datetime.datetime.now() + datetime.timedelta(hours=1)
    speed = json.loads((results / "speed.json").read_text())
    speed["machine"]["date"] = later.isoformat(timespec="seconds")  # the file says it was measured later
    (results / "speed.json").write_text(json.dumps(speed))
    t = later.timestamp()
    os.utime(results / "lm_speed.json", (t, t))  # a newer file time alone (a fresh clone) says nothing
    text = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)
    speed = _section(text, "## Speed (CPU, 1 thread(s), ours,encodec)")
    assert "**The results file was rewritten after the recorded run**" in speed
    assert "Measured by this command" not in speed
    assert "Measured by this command" in _section(text, "## uniaudio_lm speed")


def test_lm_tasks_section_copies_the_table_with_its_own_command(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    carried = tmp_path / "carried.md"
    carried.write_text(CARRIED_TEXT)
    empty = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)
    assert "_No results file `results/lm_tasks.json` yet" in empty
    meta = {"date": "2000-01-01T00:00:00", "model": "made-up-model", "whisper": "none", "seconds": 90.0,
            "machine": {"threads": 1}, "args": {"model": "some/dir", "per_task": "7", "out": "x.json",
                                                "random_tiny": "False"}}
    (results / "lm_tasks.json").write_text(json.dumps({"meta": meta, "rows": []}))
    (results / "lm_tasks.md").write_text("# title\n\ntext\n\n| task | metric |\n|---|---|\n| asr | CER 12.3% |\n")
    text = run_all.render(results, tmp_path / "RESULTS.md", carried=carried)
    section = text.split("## uniaudio_lm tasks")[1].split("## Carried over")[0]
    assert "python benchmarks/lm_tasks.py --model some/dir --per-task 7`" in section
    assert "| asr | CER 12.3% |" in section and "# title" not in section and "random" not in section
    assert "1.5 min" in section and "made-up-model" in section


def test_probe_section_shows_every_pooling_and_how_the_reported_one_was_chosen() -> None:
    d = {"model_id": "m", "train_clips": 20, "test_clips": 1000, "test_speakers": ["a", "b"], "classifier": "mlp-256",
         "pooling": "mean-max+4-step", "date": "2000-01-01",
         "accuracy": {"reasoning": 0.5, "recon": 0.25},
         "accuracy_by_pooling": {"mean-max+4-step": {"reasoning": 0.5, "recon": 0.25},
                                 "mean-max": {"reasoning": 0.375, "recon": 0.125}},
         "cv": {"features": "reasoning", "held_out_in_turn": ["c", "d"], "epochs": 150,
                "mean_accuracy": {"mean-max+4-step": 0.625, "mean-max": 0.5}}}
    text = "\n".join(run_all.probe_section(d, None, "m"))
    assert "| features | `mean-max+4-step` | `mean-max` |" in text
    assert "| reasoning tokens | 50.0% | 37.5% |" in text and "| reconstruction tokens | 25.0% | 12.5% |" in text
    assert "Reported: `mean-max+4-step`." in text
    assert "(`c`, `d`; train on the others" in text and "`mean-max+4-step` 62.5%, `mean-max` 50.0%." in text


def test_probe_section_shows_the_speed_perturbed_variant() -> None:
    d = {"model_id": "m", "train_clips": 20, "test_clips": 1000, "test_speakers": ["a", "b"], "classifier": "mlp-256",
         "variant": "mean-max+4-step+speed", "speeds": [0.92, 1.08], "date": "2000-01-01",
         "accuracy": {"reasoning": 0.75},
         "accuracy_by_variant": {"mean-max": {"reasoning": 0.25}, "mean-max+4-step": {"reasoning": 0.5},
                                 "mean-max+4-step+speed": {"reasoning": 0.75}},
         "cv": {"features": "reasoning", "held_out_in_turn": ["c"], "epochs": 150,
                "mean_accuracy": {"mean-max": 0.25, "mean-max+4-step": 0.5, "mean-max+4-step+speed": 0.625}}}
    text = "\n".join(run_all.probe_section(d, None, "m"))
    assert "| features | `mean-max` | `mean-max+4-step` | `mean-max+4-step+speed` |" in text
    assert "| reasoning tokens | 25.0% | 50.0% | 75.0% |" in text
    assert "0.92× and 1.08× speed" in text and "Reported: `mean-max+4-step+speed`." in text
    assert "`mean-max+4-step+speed` 62.5%." in text


def test_probe_pooling_keeps_time_order_and_handles_one_frame() -> None:
    import numpy as np

    from benchmarks import probe

    t = np.arange(6, dtype=np.float32).reshape(3, 2)  # frames [0,1], [2,3], [4,5]
    assert probe.pool(t, "mean-max").tolist() == [2, 3, 4, 5]
    seq = probe.pool(t, "mean-max+4-step")[4:].reshape(4, 2)
    assert np.allclose(seq[:, 0], [0, 4 / 3, 8 / 3, 4])  # evenly spaced from the first to the last frame
    assert not np.allclose(probe.pool(t[::-1], "mean-max+4-step"), probe.pool(t, "mean-max+4-step"))
    one = probe.pool(t[:1], "mean-max+4-step")
    assert one.shape == (12,) and np.allclose(one[4:].reshape(4, 2), t[0])
    with pytest.raises(ValueError, match="unknown pooling"):
        probe.pool(t, "median")


def test_file_size_section_with_the_adaptive_column() -> None:
    d = {"model_id": "m", "date": "2000-01-01", "has_entropy_tables": True,
         "results": {"8_codebooks": {"raw_bps": 1000.0, "packed_bps": 1100.0, "rans_bps": 1110.0, "auto_bps": 1089.0,
                                     "seconds": 120.0, "clips": 4}}}
    text = "\n".join(run_all.file_size_section(d, None, "m"))
    assert "| 8 | 1000 | 1100 (+10.0%) | 1110 (+11.0%) | 1089 (+8.9%) | -1.00% |" in text
    assert "adaptive" in text


def test_lm_speed_section_reads_the_date_the_file_stores(tmp_path: Path) -> None:
    results = tmp_path / "results"
    carried = _write_results(results)
    lm = json.loads((results / "lm_speed.json").read_text())
    lm["date"] = (datetime.datetime.now().astimezone() + datetime.timedelta(hours=1)).isoformat(timespec="seconds")
    (results / "lm_speed.json").write_text(json.dumps(lm))
    section = _section(run_all.render(results, tmp_path / "RESULTS.md", carried=carried), "## uniaudio_lm speed")
    assert lm["date"] in section and "(file time)" not in section
    assert "**The results file was rewritten after the recorded run**" in section
