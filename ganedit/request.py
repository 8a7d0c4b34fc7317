"""One edit request, checked before any work: what the app, its API and share links all speak.

Two ways in, one result type:

* ``EditRequest.strict(...)`` for API calls and the page's controls: the first bad value is an error
  (``RequestError``) that names the field, what was given and what is allowed.
* ``EditRequest.lenient(...)`` for share links and examples: a missing or bad value falls back to the model's
  default (a number out of range is clamped), and each fallback adds a plain-text note for the visitor.

Both need the model's catalog (its parts and its epsilon / lambda ranges); they get it from ``catalog_of(model)``,
which may raise ``ValueError`` when the model can't be used here. Every range comes from the engine's own
constants, so the API, the links and the controls can never disagree. Notes and errors are plain text: whoever
shows them must not render them as markup, since they quote what the request carried.
"""

import math
import urllib.parse
from dataclasses import asdict, dataclass

from .catalog import CLUSTERS_PREFIX
from .editing import METHODS, PSI_RANGE
from .loading import MODELS
from .query import DEFAULT_THRESHOLD, THRESHOLD_RANGE
from .seeds import MAX_SEED

FIELDS = ("model", "target", "reference", "part", "method", "epsilon", "lam", "psi", "threshold")
PREFERRED_PARTS = ("eyes", "mouth", "hair", "nose", "face")
GLOBAL_LAM = {"default": 1.0, "min": 0.0, "max": 1.0}  # the global query interpolates everything: lambda <= 1
MAX_SHOWN = 40  # characters of a bad value quoted back in a message
MAX_PART_TEXT = 400  # 'clusters:' and every id of a k <= 80 catalog fit
# A grid costs one synthesis per reference and part: 4 x 6 = 24 edits at most, a few seconds on a GPU.
MAX_GRID_REFERENCES = 4
MAX_GRID_PARTS = 6


class RequestError(ValueError):
    """A request value that is not allowed; ``field`` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def shown(value):
    """A bad value, quoted for a message and cut short (a link may carry anything)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def lam_range(catalog, method):
    """The range of lambda for ``method``: the catalog's for simultaneous, [0, 1] for global."""
    return GLOBAL_LAM if method == "global" else catalog.lam


def default_part(catalog, preferred=None):
    """``preferred`` if the catalog has it, else the first of PREFERRED_PARTS it has, else its first part."""
    if preferred in catalog.parts:
        return preferred
    return next((p for p in PREFERRED_PARTS if p in catalog.parts), catalog.parts[0])


def default_parts(catalog, count=3):
    """A few parts to start a grid with: the preferred ones the catalog has, else its first ones."""
    return [p for p in PREFERRED_PARTS if p in catalog.parts][:count] or catalog.parts[:count]


def _as_number(value):
    """A float from a number or numeric text; None if it is neither (bools are not numbers here)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_seed(value, field):
    """A seed: a whole number from 0 to MAX_SEED (an integer, or a number or text with no fractional part)."""
    number = _as_number(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or not 0 <= number <= MAX_SEED:
        raise RequestError(field, f"{field} must be a whole number from 0 to {MAX_SEED}; got {shown(value)}")
    return int(number)


def parse_number(value, field, low, high, below_high=False):
    """A finite float in [low, high] (or [low, high) when ``below_high``)."""
    number = _as_number(value)
    if number is None or not math.isfinite(number) or not low <= number <= high or (below_high and number == high):
        upper = f"just under {high:g}" if below_high else f"{high:g}"
        raise RequestError(field, f"{field} must be a number from {low:g} to {upper}; got {shown(value)}")
    return number


def check_model(value):
    if not isinstance(value, str) or value not in MODELS:
        raise RequestError("model", f"model must be one of {', '.join(MODELS)}; got {shown(value)}")
    return value


def check_method(value):
    if value not in METHODS:
        raise RequestError("method", f"method must be one of {', '.join(METHODS)}; got {shown(value)}")
    return value


def check_part(value, catalog):
    """A part of the catalog: one of its parts, or a set of its clusters as 'clusters:3,7'; returned by the name
    the catalog gives it (a set of clusters that is exactly a named part becomes that name)."""
    if isinstance(value, str) and value in catalog.parts:
        return value
    if isinstance(value, str) and value.startswith(CLUSTERS_PREFIX) and len(value) <= MAX_PART_TEXT:
        try:
            return catalog.part_name(catalog.part_clusters(value))
        except ValueError:
            pass
    raise RequestError("part", f"part must be one of the model's parts ({', '.join(catalog.parts)}) or "
                               f"'{CLUSTERS_PREFIX}' and cluster ids from 0 to {catalog.k - 1}; got {shown(value)}")


@dataclass(frozen=True)
class EditRequest:
    """Every parameter of one edit, checked and complete (defaults filled in)."""

    model: str
    target: int
    reference: int
    part: str
    method: str
    epsilon: float  # sequential: budget of change outside the part, per style layer
    lam: float  # simultaneous and global: strength
    psi: float  # truncation of both seeds' latents
    threshold: float  # rho / (1 + rho): channels with M at or below it are never taken (sequential)

    @classmethod
    def strict(cls, catalog_of, model, target, reference, part, method="sequential", epsilon=None, lam=None,
               psi=None, threshold=None):
        """A request from API or control values; None means the model's default. RequestError on a bad value
        (ValueError from ``catalog_of`` when the model can't be used here)."""
        model = check_model(model)
        target = parse_seed(target, "target seed")
        reference = parse_seed(reference, "reference seed")
        method = check_method(method)
        catalog = catalog_of(model)
        part = check_part(part, catalog)
        eps = catalog.epsilon
        epsilon = catalog.default_epsilon(part) if epsilon is None else parse_number(epsilon, "ε", eps["min"], eps["max"])
        lams = lam_range(catalog, method)
        lam = lams["default"] if lam is None else parse_number(lam, "λ", lams["min"], lams["max"])
        psi = MODELS[model].truncation_psi if psi is None else parse_number(psi, "truncation ψ", *PSI_RANGE)
        threshold = DEFAULT_THRESHOLD if threshold is None else parse_number(
            threshold, "threshold", *THRESHOLD_RANGE, below_high=True)
        return cls(model, target, reference, part, method, epsilon, lam, psi, threshold)

    @classmethod
    def lenient(cls, catalog_of, values, fallback_model, defaults=None):
        """(request, notes) from a share link's query (a mapping of text; missing keys use defaults).

        An unknown model, or one that ``catalog_of`` can't give, becomes ``fallback_model``; ``defaults(model)``
        may suggest a dict of seeds, a part and its epsilon for a model (its example). Each fallback adds a note.
        """
        notes = []
        given = {key: values[key] for key in FIELDS if values.get(key) not in (None, "")}
        model = given.get("model", fallback_model)
        try:
            catalog = catalog_of(check_model(model))
        except ValueError as err:
            notes.append(f"{err}; showing {fallback_model} instead." if isinstance(err, RequestError)
                         else f"The model {shown(model)} is not available on this server; showing {fallback_model}.")
            model, catalog = fallback_model, catalog_of(fallback_model)
            given = {}  # the other values were meant for the other model
        suggested = (defaults(model) if defaults else None) or {}

        def fall_back(field, default, check):
            if field not in given:
                return default
            try:
                return check(given[field])
            except RequestError as err:
                notes.append(f"{err}; using {default:g}." if isinstance(default, float) else f"{err}; using {default}.")
                return default

        method = fall_back("method", "sequential", check_method)
        part = fall_back("part", default_part(catalog, suggested.get("part")), lambda v: check_part(v, catalog))
        target = fall_back("target", suggested.get("target", 0), lambda v: parse_seed(v, "target seed"))
        reference = fall_back("reference", suggested.get("reference", 1), lambda v: parse_seed(v, "reference seed"))
        lams = lam_range(catalog, method)
        # a suggested epsilon is its part's: a link to another part starts at that part's own default
        epsilon = suggested.get("epsilon") if part == suggested.get("part") else None
        ranged = {}
        for field, name, bounds, default in (
            ("epsilon", "ε", catalog.epsilon, catalog.default_epsilon(part) if epsilon is None else epsilon),
            ("lam", "λ", lams, lams["default"]),
            ("psi", "truncation ψ", dict(min=PSI_RANGE[0], max=PSI_RANGE[1]), MODELS[model].truncation_psi),
            ("threshold", "threshold", dict(min=THRESHOLD_RANGE[0], max=0.99), DEFAULT_THRESHOLD),
        ):
            ranged[field] = fall_back(field, float(default), lambda v, n=name, b=bounds: _clamped(v, n, b, notes))
        return cls(model, target, reference, part, method, **ranged), notes

    def to_query(self):
        """The share link's query string: every field, so the link reproduces this very edit."""
        values = {key: (f"{value:g}" if isinstance(value, float) else value) for key, value in asdict(self).items()}
        return urllib.parse.urlencode(values, quote_via=urllib.parse.quote)

    def strength(self):
        """The one number that sets how far the edit goes: ε for sequential, λ otherwise, as 'eps6.3' / 'lam3'."""
        return f"eps{self.epsilon:g}" if self.method == "sequential" else f"lam{self.lam:g}"

    def file_stem(self):
        """A file name stem for this edit's pictures, e.g. 'cartoon-faces_t9_r12_eyes_sequential_eps6.3'."""
        part = "".join(c if c.isalnum() or c in "-." else "-" for c in self.part)
        return f"{self.model}_t{self.target}_r{self.reference}_{part}_{self.method}_{self.strength()}"

    def describe(self):
        """What the result shows, in words (the result picture's alt text)."""
        if self.method == "global":
            return f"seed {self.target} moved toward seed {self.reference} everywhere (global, λ {self.lam:g})"
        return f"{self.part} of seed {self.reference} moved onto seed {self.target}"


def _clamped(value, name, bounds, notes):
    """A number clamped into bounds ({'min', 'max'}), with a note when it had to move; RequestError if not a number."""
    number = _as_number(value)
    if number is None or not math.isfinite(number):
        raise RequestError(name, f"{name} must be a number from {bounds['min']:g} to {bounds['max']:g}; "
                                 f"got {shown(value)}")
    clamped = min(max(number, bounds["min"]), bounds["max"])
    if clamped != number:
        notes.append(f"{name} {number:g} is outside {bounds['min']:g} to {bounds['max']:g}; using {clamped:g}.")
    return clamped


@dataclass(frozen=True)
class GridRequest:
    """The paper's Fig. 3 for one target: a few references and a few parts, bounded so a grid stays a few edits."""

    model: str
    target: int
    references: tuple
    parts: tuple
    method: str
    epsilon: float | None  # None: each part's row at the part's own default
    lam: float
    psi: float

    @classmethod
    def strict(cls, catalog_of, model, target, references, parts, method="sequential", epsilon=None, lam=None,
               psi=None):
        """Like EditRequest.strict, with 1 to MAX_GRID_REFERENCES reference seeds and 1 to MAX_GRID_PARTS parts;
        without ``epsilon``, each part's row takes the part's own default (as the CLI's grids do)."""
        for field, values, most in (("references", references, MAX_GRID_REFERENCES), ("parts", parts, MAX_GRID_PARTS)):
            if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= most:
                count = len(values) if isinstance(values, (list, tuple)) else shown(values)
                raise RequestError(field, f"a grid takes 1 to {most} {field}; got {count}")
        first = EditRequest.strict(catalog_of, model, target, references[0], parts[0], method, epsilon, lam, psi)
        catalog = catalog_of(first.model)
        seeds = tuple(parse_seed(seed, "each reference seed") for seed in references)
        parts = tuple(dict.fromkeys(check_part(part, catalog) for part in parts))
        epsilon = None if epsilon is None else first.epsilon
        return cls(first.model, first.target, seeds, parts, first.method, epsilon, first.lam, first.psi)
