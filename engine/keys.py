"""Keys as people write and mix them: names, Camelot codes, relations between keys.

Pure and light (no audio libraries), so the store and the CLI can read and
write keys without loading the analysis code (``engine.describe.key``).
Tonics are spelled in sharps throughout.
"""

from __future__ import annotations

import re

TONICS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MODES = ("major", "minor")
_ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_TEXT = re.compile(
    r"^\s*([A-Ga-g])\s*(#|♯|b|♭|-?sharp|-?flat)?\s*(minor|major|moll|min|maj|dur|m)?\s*$",
    re.IGNORECASE,
)
_MINOR_WORDS = ("minor", "moll", "min")
_CAMELOT_TEXT = re.compile(r"^\s*0?(1[0-2]|[1-9])\s*([ABab])\s*$")


def pitch_class(tonic: str) -> int:
    """Pitch class 0-11 of a note name: "C" 0, "C#"/"Db" 1, ... "B" 11."""
    parsed = parse_key(tonic)
    if parsed is None:
        raise ValueError(f"not a note name: {tonic!r}")
    return TONICS.index(parsed[0])


def camelot(tonic: str, mode: str) -> str:
    """Camelot wheel code of a key: ("C", "major") "8B", ("A", "minor") "8A", ("F", "minor") "4A".

    Neighbouring numbers are a fifth apart; A is minor, B major, and the
    same number in A and B are relative keys.
    """
    pc = pitch_class(tonic)
    if mode == "major":
        number, letter = (8 + 7 * pc) % 12, "B"
    elif mode == "minor":
        number, letter = (5 + 7 * pc) % 12, "A"
    else:
        raise ValueError(f"mode must be 'major' or 'minor', not {mode!r}")
    return f"{number or 12}{letter}"


def parse_key(text: str) -> tuple[str, str | None] | None:
    """(tonic, mode) from a key as people write it, or None when ``text`` is not one.

    Accepts "F minor", "Fm", "F#min", "Gb major", "Bb", "C# Minor",
    "F sharp minor" and Camelot codes ("8A", "12B"). The tonic comes back in
    sharps ("Gb" is "F#"); mode is None when the text names only a note.
    A lowercase root is accepted only with a spelled-out mode ("c minor"):
    "b" or "am" alone are words, not keys.
    """
    if not isinstance(text, str):
        return None
    code = _CAMELOT_TEXT.match(text)
    if code:
        return _from_camelot(int(code.group(1)), code.group(2).upper())
    match = _KEY_TEXT.match(text.replace("_", " "))
    if not match:
        return None
    root, accidental, mode_text = match.groups()
    if root.islower() and (mode_text is None or mode_text.lower() == "m"):
        return None
    if accidental == "B":  # "AB" is not A flat
        return None
    pc = _ROOTS[root.upper()]
    if accidental:
        pc += 1 if accidental.lower().lstrip("-") in ("#", "♯", "sharp") else -1
    mode = None
    if mode_text:
        # "m" is minor and "M" major (chord-symbol convention); words in any case.
        if mode_text == "M":
            mode = "major"
        elif mode_text == "m" or mode_text.lower() in _MINOR_WORDS:
            mode = "minor"
        else:
            mode = "major"
    return TONICS[pc % 12], mode


def _from_camelot(number: int, letter: str) -> tuple[str, str]:
    # Inverse of camelot(): 7 is its own inverse modulo 12.
    if letter == "B":
        return TONICS[(7 * (number - 8)) % 12], "major"
    return TONICS[(7 * (number - 5)) % 12], "minor"


def relative_key(tonic: str, mode: str) -> tuple[str, str]:
    """The relative minor of a major key (a minor third down) or major of a minor key."""
    pc = pitch_class(tonic)
    if mode == "major":
        return TONICS[(pc + 9) % 12], "minor"
    return TONICS[(pc + 3) % 12], "major"


def compatible_keys(tonic: str, mode: str) -> list[tuple[str, str]]:
    """Keys that mix with (tonic, mode): itself, its relative, and a fifth up and down in the same mode.

    On the Camelot wheel: the same code, the other letter, and the numbers either side.
    """
    pc = pitch_class(tonic)
    tonic = TONICS[pc]
    return [
        (tonic, mode),
        relative_key(tonic, mode),
        (TONICS[(pc + 7) % 12], mode),
        (TONICS[(pc + 5) % 12], mode),
    ]


def mirex_score(estimated: tuple[str | None, str | None] | None, truth: tuple[str, str]) -> float:
    """MIREX key score of ``estimated`` (tonic, mode) against ``truth``.

    1.0 the same key; 0.5 the same mode with the tonic a fifth up or down;
    0.3 the relative key; 0.2 the parallel key (same tonic, other mode);
    0.0 anything else, including no estimate.
    """
    if estimated is None or estimated[0] is None or estimated[1] is None:
        return 0.0
    est_pc, true_pc = pitch_class(estimated[0]), pitch_class(truth[0])
    est_mode, true_mode = estimated[1], truth[1]
    interval = (est_pc - true_pc) % 12
    if est_mode == true_mode:
        if interval == 0:
            return 1.0
        if interval in (5, 7):
            return 0.5
        return 0.0
    if (est_mode, interval) in (("major", 3), ("minor", 9)):
        return 0.3
    if interval == 0:
        return 0.2
    return 0.0


def key_label(tonic: str | None, mode: str | None) -> str | None:
    """A key as shown and filtered on: "F minor", "C#" when only the note is known, None for none."""
    return " ".join(part for part in (tonic, mode) if part) or None


def camelot_of(tonic: str | None, mode: str | None) -> str | None:
    """``camelot`` of a stored key, or None when the key or its mode is unknown."""
    return camelot(tonic, mode) if tonic and mode else None


def labels_matching(text: str, *, compatible: bool = False) -> list[str]:
    """The stored key labels (``key_label``) a key filter ``text`` accepts.

    "F minor" accepts "F minor" and a bare "F" (a name that named only the
    note); "F" accepts F major, F minor and "F". With ``compatible`` (a
    mode is then needed), every key that mixes with it (``compatible_keys``).
    Raises ValueError when ``text`` is not a key.
    """
    parsed = parse_key(text)
    if parsed is None:
        raise ValueError(text)
    tonic, mode = parsed
    if compatible:
        if mode is None:
            raise ValueError(text)
        keys = compatible_keys(tonic, mode)
    else:
        keys = [(tonic, mode)] if mode else [(tonic, "major"), (tonic, "minor")]
    labels = [key_label(t, m) for t, m in keys] + [t for t, _ in keys]
    return list(dict.fromkeys(labels))


# The keys a program may send, as JSON-Schema patterns (the API's schema): every string they match,
# parse_key reads. parse_key itself is more lenient ("F sharp minor", any capitalisation of a mode).
_NOTE = r"[A-G]\s*(#|♯|b|♭)?"
_MODE = r"(minor|major|min|maj|moll|dur|Minor|Major|m|M)"
_CAMELOT = r"0?(1[0-2]|[1-9])\s*[ABab]"
KEY_PATTERN = rf"^\s*({_CAMELOT}|{_NOTE}\s*{_MODE}?)\s*$"
KEY_WITH_MODE_PATTERN = rf"^\s*({_CAMELOT}|{_NOTE}\s*{_MODE})\s*$"
