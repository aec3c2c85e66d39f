"""`scorer export` and `scorer verify`: one parity gate, before writing and on an existing artifact."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from scorer.artifact import MANIFEST_NAME
from scorer.errors import GateError, InputError
from scorer.flags import FiniteFloat
from scorer.gates import Gates
from scorer.paths import check_dir_target
from scorer.precision import cpu_info, unavailable_reason
from scorer.variants import PRECISIONS

console = Console(stderr=True)


def gate_options(command: click.Command) -> click.Command:
    """The gate's limits as flags, one per field of `Gates` (its defaults)."""
    helps = {"threshold": "Decision threshold on scores (dedup match if score >= threshold)."}
    options = [
        *(
            click.option(
                f"--{gate.name.replace('_', '-')}",
                type=FiniteFloat(),
                default=gate.default,
                show_default=True,
                help=helps.get(gate.name),
            )
            for gate in fields(Gates)
        ),
        click.option(
            "--calibration",
            type=click.Path(path_type=Path),
            default=None,
            help="Parquet file of query/candidate pairs for the gate [built-in product pairs].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _gates(params: dict[str, Any]) -> Gates:
    return Gates(**{name: params.pop(name) for name in Gates.__dataclass_fields__})


def _checkpoint(path: Path) -> Path:
    if not path.is_dir() or not (path / "config.json").is_file():
        raise InputError(f"checkpoint {path} is not a model directory (no config.json); give a CrossEncoder checkpoint")
    return path


def parity_table(parity: dict[str, dict[str, Any]]) -> Table:
    cpu = cpu_info().describe()
    table = Table(
        title="parity against CrossEncoder.predict", caption=f"CPU: {cpu['model']} ({' '.join(cpu['flags'])})"
    )
    for column in ("variant", "pairs", "max abs diff", "spearman", "flips", "device", "gate"):
        table.add_column(column)
    for precision, p in parity.items():
        if "pairs" not in p:  # not runnable on this machine, or its file could not be loaded
            verdict = f"[yellow]skipped[/] {p['skipped']}" if "skipped" in p else f"[red]FAIL[/] {p['failures'][0]}"
            table.add_row(precision, *["-"] * 5, verdict)
            continue
        verdict = "[green]pass[/]" if p["passed"] else f"[red]FAIL[/] {'; '.join(p['failures'])}"
        table.add_row(
            precision,
            str(p["pairs"]),
            f"{p['max_abs_diff']:.2e}",
            f"{p['spearman']:.5f}",
            f"{p['flips']} ({p['flip_rate']:.2%})",
            p["device"],
            verdict,
        )
    return table


def _text_specs(text: dict[str, str] | None) -> tuple[str, str]:
    """The calibration file's text columns: those the checkpoint was trained on, else query and candidate."""
    return (text["query"], text["candidate"]) if text else ("query", "candidate")


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Artifact directory to create.")
@click.option(
    "--precisions",
    default=",".join(PRECISIONS),
    show_default=True,
    help="Variants to build (fp32 always; bf16, fp32-openvino and int8-openvino where openvino is installed, "
    "bf16 only where this CPU has bf16).",
)
@click.option("--max-length", type=click.IntRange(min=8), default=None, help="Tokens per pair [the checkpoint's].")
@click.option("--force", is_flag=True, help="Replace an existing artifact (a directory holding manifest.json).")
@click.option(
    "--int8-activations",
    type=click.Choice(["auto", "per-tensor", "per-token-mixed", "per-token"]),
    default="auto",
    show_default=True,
    help="int8 activation scales to try, fastest first; the first that passes the gate is kept. auto: "
    "per-token-mixed, per-token, both again calibrated (smoothing, GPTQ rounding; fitted on built-in pairs "
    "other than the gate's), then per-token with early layers' FFN, then whole layers, in fp32; "
    "per-tensor only when asked.",
)
@gate_options
def export(
    checkpoint: Path,
    output: Path,
    precisions: str,
    max_length: int | None,
    force: bool,
    int8_activations: str,
    **params: Any,
) -> None:
    """Export CHECKPOINT (a sentence-transformers CrossEncoder) to ONNX fp32/int8/fp16 (+ OpenVINO bf16 and f32)
    with a parity gate."""
    from export.calibration import load_calibration
    from export.exporter import export_artifact, trained_text

    gates = _gates(params)
    _checkpoint(checkpoint)
    reads = [checkpoint] + ([params["calibration"]] if params["calibration"] else [])
    check_dir_target(output, reads, "-o/--output", MANIFEST_NAME, force=force)
    chosen = tuple(dict.fromkeys(["fp32", *[p.strip() for p in precisions.split(",") if p.strip()]]))
    unknown = set(chosen) - set(PRECISIONS)
    if unknown:
        raise click.BadParameter(f"unknown precision(s) {', '.join(sorted(unknown))}", param_hint="--precisions")
    queries, candidates = load_calibration(params["calibration"], *_text_specs(trained_text(checkpoint)))
    result = export_artifact(
        checkpoint,
        output,
        gates,
        queries,
        candidates,
        chosen,
        max_length,
        log=lambda message: console.log(message),
        int8_activations=int8_activations,
    )
    console.print(parity_table(result.parity))
    click.echo(f"artifact written to {output}", err=True)


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="The torch checkpoint.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Alias of --calibration.")
@click.option(
    "--max-length",
    type=click.IntRange(min=8),
    default=None,
    help="Tokens per pair for the torch reference [the checkpoint's]; give the value passed to export, if any.",
)
@gate_options
def verify(artifact: Path, checkpoint: Path, data: Path | None, max_length: int | None, **params: Any) -> None:
    """Re-run the parity gate of every variant of ARTIFACT against CHECKPOINT, on this machine; exit 1 when
    a variant that passed at export fails now (or its file changed). A variant this machine cannot run (bf16
    without bf16 instructions) is reported as skipped."""
    from export.calibration import load_calibration
    from export.exporter import trained_text
    from export.gate import check_variant
    from export.reference import load_cross_encoder, reference_scores
    from scorer.artifact import load_manifest

    gates = _gates(params)
    manifest = load_manifest(artifact)
    specs = _text_specs(trained_text(checkpoint))
    queries, candidates = load_calibration(data or params["calibration"], *specs)
    model = load_cross_encoder(_checkpoint(checkpoint), max_length)  # never the artifact's own settings
    reference = reference_scores(model, queries, candidates)
    parity: dict[str, dict[str, Any]] = {}
    for precision, variant in manifest.variants.items():
        skip = unavailable_reason(variant, precision, cpu_info())
        if skip and precision != "fp16":  # fp16 is checked on the CPU provider where there is no GPU
            parity[precision] = {"skipped": skip}
            continue
        try:
            parity[precision] = check_variant(artifact, precision, reference, queries, candidates, gates)
        except InputError as exc:  # e.g. bf16 over an fp32 file that changed
            parity[precision] = {"passed": False, "failures": [str(exc)]}
    console.print(parity_table(parity))
    passed_at_export = {p for p, v in manifest.variants.items() if v.parity.get("passed") is not False}
    failed = [p for p, v in parity.items() if not v.get("passed", True) and p in passed_at_export]
    if failed:
        raise GateError("parity gate failed: " + ", ".join(failed))
