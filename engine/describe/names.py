"""What a sample's file and folder names say: tempo, key, kind and category.

Sample packs name their files by convention ("Pad_Fmin_90.wav",
"Loops/128 BPM/drum_loop.wav", "Kick_808_C#_140bpm.wav"), but the same
characters also mean sample numbers ("Kick_01"), drum machines ("808"),
versions ("v2", "take3"), years ("Break 1994") and words ("A_Kick",
"Dark", "Bass"). The parser only reads what is unambiguous:

- tempo: a number marked "bpm" anywhere in the path, or a bare number
  60-200 in the file name when the name is musical (it has a loop word, a
  key, or a "bpm" folder) and the number is not a counter, a model number
  or zero-padded;
- key: a delimited token with a mode ("Fmin", "C#m", "Amaj", "C# minor"),
  or a bare note ("F#", "Bb", "C") or Camelot code ("8A") only when the
  token next to it is a tempo or the word "key";
- kind and category: words of the file name first, then of the folders
  from the nearest up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from engine.describe.key import parse_key

MIN_BPM, MAX_BPM = 60, 200
_SPLIT = re.compile(r"[\s_\-.,;()\[\]{}+&~]+")
_EXPLICIT_BPM = [
    re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d{1,2})?)\s*[-_]?\s*bpm(?![a-z])", re.IGNORECASE),
    re.compile(r"(?<![a-z])bpm\s*[-_]?\s*(\d{2,3}(?:\.\d{1,2})?)(?![\d.])", re.IGNORECASE),
]
# Words right before a number that make it a counter, not a tempo ("Take 120", "Vol 100", "Vel 127").
_COUNTER_WORDS = {
    "v", "ver", "version", "take", "tk", "vol", "volume", "no", "nr", "num", "number", "part", "pt", "track",
    "trk", "round", "rr", "var", "variation", "layer", "vel", "velocity", "kit", "sample", "preset", "patch",
    "bank", "mic", "ch", "channel", "bus", "cd", "disc", "disk", "side", "chapter", "episode", "ep", "room", "id",
    "#", "hz", "khz", "ms", "db", "bar", "bars", "step", "steps", "st", "semi", "cents",
}
# Instrument model prefixes whose number is a model in tempo range (SH-101, Juno-106, CS-80, CR-78, MPC60, ...).
_MODEL_WORDS = {"sh", "juno", "cs", "cr", "mpc", "tr", "tb", "rx", "dx", "jx", "ms", "sp", "ob", "kr", "mc", "sk",
                "rd", "td", "dr", "jd", "jp", "mks", "ddd", "ep", "tx", "sy", "ax", "rs", "px", "xd"}
# Units written after a number ("100 Hz", "120 ms").
_UNIT_WORDS = {"hz", "khz", "ms", "db", "cents", "st", "bars", "bar", "steps", "beats", "sec", "s", "k", "x", "pct"}
_LOOP_WORDS = {"loop", "loops", "break", "breaks", "breakbeat", "breakbeats", "groove", "grooves", "beat", "beats",
               "fill", "fills", "riff", "riffs", "phrase", "phrases", "toploop", "toploops", "drumloop", "drumloops",
               "progression", "progressions", "arp", "arps", "melody", "melodies", "chords", "stem", "stems"}
_ONE_SHOT_WORDS = {"oneshot", "oneshots", "one shot", "one shots", "shot", "shots", "hit", "hits", "stab", "stabs"}
# Drum names say "one-shot" only when nothing says "loop": "Kick Loop" is a loop.
_ONE_SHOT_INSTRUMENTS = {"kick", "kicks", "snare", "snares", "clap", "claps", "hat", "hats", "hihat", "hihats",
                         "rim", "rimshot", "tom", "toms", "crash", "ride", "cymbal", "cymbals", "shaker", "cowbell"}
_CATEGORIES = [
    ("kick", {"kick", "kicks", "kik", "bd", "bassdrum"}),
    ("snare", {"snare", "snares", "sd", "rim", "rimshot", "sidestick"}),
    ("hat", {"hat", "hats", "hihat", "hihats", "hh", "openhat", "closedhat", "oh"}),
    ("clap", {"clap", "claps", "snap", "snaps"}),
    ("tom", {"tom", "toms"}),
    ("cymbal", {"cymbal", "cymbals", "crash", "crashes", "ride", "rides", "splash", "china"}),
    ("percussion", {"perc", "percs", "percussion", "shaker", "shakers", "conga", "congas", "bongo", "bongos",
                    "tambourine", "tamb", "cowbell", "clave", "claves"}),
    ("drums", {"drum", "drums", "drumloop", "drumloops", "break", "breaks", "breakbeat", "breakbeats", "beat",
               "beats", "groove", "grooves", "toploop", "toploops"}),
    ("bass", {"bass", "basses", "bassline", "basslines", "sub", "subs", "808", "808s"}),
    ("pad", {"pad", "pads", "atmos", "atmosphere", "drone", "drones", "texture", "textures"}),
    ("lead", {"lead", "leads", "synth", "synths", "arp", "arps", "pluck", "plucks"}),
    ("keys", {"keys", "piano", "pianos", "rhodes", "organ", "organs", "epiano", "wurli"}),
    ("guitar", {"guitar", "guitars", "gtr"}),
    ("strings", {"strings", "string", "violin", "cello", "orchestra"}),
    ("brass", {"brass", "horn", "horns", "trumpet", "sax"}),
    ("chords", {"chord", "chords", "progression", "progressions", "stab", "stabs"}),
    ("vocal", {"vocal", "vocals", "vox", "voice", "voices", "acapella", "acapellas", "chant", "chants"}),
    ("fx", {"fx", "sfx", "effect", "effects", "riser", "risers", "sweep", "sweeps", "impact", "impacts",
            "downlifter", "uplifter", "whoosh", "noise", "transition", "transitions"}),
]
_CATEGORY_OF = {word: name for name, words in _CATEGORIES for word in words}


@dataclass(frozen=True)
class NameHints:
    tempo: float | None  # BPM
    key: tuple[str, str | None] | None  # (tonic in sharps, "major" / "minor" / None)
    kind: str | None  # "loop" or "one-shot"
    category: str | None  # "kick", "snare", "hat", "clap", "tom", "cymbal", "percussion", "drums", "bass", "pad", ...


def hints_from_path(path: str) -> NameHints:
    """Tempo, key, kind and category that ``path``'s file and folder names state unambiguously.

    ``path`` may be POSIX or Windows style, absolute or relative; the file
    extension is ignored. Anything not stated plainly is None.
    """
    parts = _components(path)
    if not parts:
        return NameHints(tempo=None, key=None, kind=None, category=None)
    stem, folders = parts[-1], parts[:-1]  # folders root first
    nearest_first = [stem, *reversed(folders)]
    words = [_words(part) for part in nearest_first]

    explicit = [_explicit_bpm(part) for part in nearest_first]
    tempo = next((bpm for bpm in explicit if bpm is not None), None)
    tokens = _SPLIT.split(stem)
    tokens = [t for t in tokens if t]
    key = _key(tokens, tempo_token=_tempo_token_indices(tokens))
    kind = _kind(nearest_first, words)
    if tempo is None:
        musical = key is not None or kind == "loop" or any(
            w in _LOOP_WORDS for ws in words for w in ws
        )
        if musical:
            tempo = _bare_tempo(tokens)
            if key is None and tempo is not None:
                # A note next to the tempo just found ("Bass_E_120") is a key after all.
                key = _key(tokens, tempo_token=_tempo_token_indices(tokens) | _bare_tempo_indices(tokens))
    category = next((c for ws in words for c in (_CATEGORY_OF.get(w) for w in ws) if c), None)
    return NameHints(tempo=tempo, key=key, kind=kind, category=category)


def _components(path: str) -> list[str]:
    """The path's folder names and its file name without extension, root first."""
    pure: PurePath = PureWindowsPath(path) if "\\" in path else PurePosixPath(path)
    parts = [p for p in pure.parts if p not in ("/", "\\") and not p.endswith(":\\") and p not in (".", "..")]
    if not parts:
        return []
    stem = parts[-1]
    if "." in stem.strip("."):
        stem = stem.rsplit(".", 1)[0]
    return [*parts[:-1], stem]


def _words(part: str) -> list[str]:
    """Lowercase words of a name: split at delimiters, camelCase and letter-digit boundaries.

    "One Shots" and "one_shot" also yield "one shot(s)"; "DrumLoop" yields
    "drum", "loop" and "drumloop".
    """
    raw = [t for t in _SPLIT.split(part) if t]
    out: list[str] = []
    for token in raw:
        out.append(token.lower())
        pieces = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", token)
        if len(pieces) > 1:
            out.extend(p.lower() for p in pieces)
    lowered = [t.lower() for t in raw]
    for a, b in zip(lowered, lowered[1:]):
        out.append(f"{a} {b}")
    return out


def _explicit_bpm(part: str) -> float | None:
    for pattern in _EXPLICIT_BPM:
        for match in pattern.finditer(part):
            bpm = float(match.group(1))
            if MIN_BPM / 2 <= bpm <= MAX_BPM * 1.5:  # "70bpm" and "240 BPM" are said outright; take them
                return bpm
    return None


def _tempo_token_indices(tokens: list[str]) -> set[int]:
    """Indices of tokens that state a tempo: "140bpm", or "BPM" itself and the number beside it."""
    marked = set()
    for i, token in enumerate(tokens):
        low = token.lower()
        if "bpm" in low:
            marked.add(i)
            if low == "bpm":
                for j in (i - 1, i + 1):
                    if 0 <= j < len(tokens) and tokens[j].isdigit():
                        marked.add(j)
    return marked


def _bare_candidates(tokens: list[str]) -> list[tuple[int, int]]:
    """(index, value) of tokens that could be a bare tempo: 60-200, no leading zero, not a counter or model."""
    found = []
    for i, token in enumerate(tokens):
        if not token.isdigit() or token.startswith("0") or len(token) > 3:
            continue
        value = int(token)
        if not MIN_BPM <= value <= MAX_BPM:
            continue
        before = tokens[i - 1].lower() if i > 0 else ""
        after = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
        if before in _COUNTER_WORDS or before in _MODEL_WORDS or after in _UNIT_WORDS:
            continue
        found.append((i, value))
    return found


def _bare_tempo(tokens: list[str]) -> float | None:
    found = _bare_candidates(tokens)
    # Two bare numbers in range ("Loop 90 120") is no statement of either.
    return float(found[0][1]) if len(found) == 1 else None


def _bare_tempo_indices(tokens: list[str]) -> set[int]:
    found = _bare_candidates(tokens)
    return {found[0][0]} if len(found) == 1 else set()


def _key(tokens: list[str], *, tempo_token: set[int]) -> tuple[str, str | None] | None:
    """The key a file name's tokens state, or None (see module docstring for the rules)."""
    # Two-token forms first: "C# minor", "Gb Major", "F sharp minor".
    for i in range(len(tokens) - 1):
        for span in (3, 2):
            text = " ".join(tokens[i : i + span])
            if i + span <= len(tokens) and span > 1:
                parsed = parse_key(text)
                if parsed and parsed[1] is not None and tokens[i + span - 1].lower() in (
                    "minor", "major", "min", "maj", "moll", "dur",
                ):
                    return parsed
    for i, token in enumerate(tokens):
        parsed = parse_key(token)
        if parsed is None:
            continue
        before = tokens[i - 1].lower() if i > 0 else ""
        if before == "i" and token.lower() == "am":  # "I Am"
            continue
        # Camelot codes and a capital-M major ("DM", "GM" are also initials) need a neighbour too.
        has_mode = parsed[1] is not None and not re.fullmatch(r"0?\d{1,2}[ABab]|[A-G][#b]?M", token)
        if has_mode:
            return parsed
        # A note with a sharp ("Kick_808_C#") is no counter or variation letter: it stands alone.
        if re.fullmatch(r"[A-G][#♯]", token):
            return parsed
        beside = {i - 1, i + 1}
        if beside & tempo_token or before == "key" or (i + 1 < len(tokens) and tokens[i + 1].lower() == "key"):
            return parsed
    return None


def _kind(parts_nearest_first: list[str], words: list[list[str]]) -> str | None:
    for ws in words:
        if any(w in _LOOP_WORDS for w in ws):
            return "loop"
        if any(w in _ONE_SHOT_WORDS or w in ("one shot", "one shots") for w in ws):
            return "one-shot"
    for ws in words:
        if any(w in _ONE_SHOT_INSTRUMENTS for w in ws):
            return "one-shot"
    return None
