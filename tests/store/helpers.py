"""Rows for store tests: a track record and its measurements."""

from engine.store import Measurements, NewTrack, TrackRecord

MEASUREMENTS = Measurements(tempo=None, spectral_centroid=440.0, zero_crossing_rate=0.04, rms_energy=0.3,
                            feature_version=1)


def record(track_id="ab" * 32, **overrides):
    values = dict(
        id=track_id, filename="kick.wav", storage="referenced", path="/music/kick.wav", format="wav",
        codec="pcm_16", file_size=1000, file_mtime=1.0, sample_rate=44_100, channels=2, duration=1.0,
        analysed_duration=1.0, truncated=False,
    )
    values.update(overrides)
    return TrackRecord(**values)


def add(store, rec=None, **new):
    """Add a track with the standard measurements; ``new`` sets NewTrack's other fields."""
    return store.tracks.add(NewTrack(rec or record(), MEASUREMENTS, **new))


def managed_file(tmp_path, content: bytes, name="upload.wav"):
    """A spooled file the store moves into place, as an upload would be."""
    path = tmp_path / "spool" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path
