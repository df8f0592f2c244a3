"""Waveform overviews: known answers on synthetic signals, the store, ingest, lazy computing, backup, drawing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import Settings
from engine.errors import InputError, NotFoundError
from engine.library import Library, Waveform
from engine.store import WaveformWrite
from engine.waveform import FULL_SCALE, WAVEFORM_COLUMNS, WAVEFORM_VERSION, from_bytes, overview, peaks, to_bytes
from tests.fixtures_audio import click_track, sine, write_audio
from tests.fixtures_fake import FakeEmbedder

RATE = 44_100


# -- peaks: known answers ------------------------------------------------------------


def test_full_scale_square_wave_reads_full_scale_in_every_column():
    square = np.where(np.arange(RATE) % 100 < 50, 1.0, -1.0).astype(np.float32)  # 441 Hz, 1 s
    result = peaks(square, sample_rate=RATE)
    assert result.shape == (WAVEFORM_COLUMNS, 2) and result.dtype == np.int8
    assert (result[:, 0] == -127).all() and (result[:, 1] == 127).all()


def test_silence_reads_zero():
    assert not peaks(np.zeros(3 * RATE, dtype=np.float32), sample_rate=RATE).any()


def test_half_amplitude_sine_reads_about_63():
    result = peaks(sine(440, 2.0, RATE, amplitude=0.5), sample_rate=RATE)
    # Each column is 5 ms, two cycles: it reaches both crests, 0.5 * 127 = 63.5.
    assert ((result[:, 0] >= -64) & (result[:, 0] <= -62)).all()
    assert ((result[:, 1] >= 62) & (result[:, 1] <= 64)).all()


def test_a_2_ms_file_has_one_column_per_sample():
    click = np.zeros(88, dtype=np.float32)  # 2 ms at 44.1 kHz: fewer samples than columns
    click[:2] = (0.9, -0.4)
    result = peaks(click, sample_rate=RATE)
    assert result.shape == (88, 2)
    assert result[0].tolist() == [114, 114] and result[1].tolist() == [-51, -51] and not result[2:].any()


def test_fewer_columns_asked_for_are_given_and_every_sample_counts():
    samples = np.zeros(1001, dtype=np.float32)  # 1001 / 400: columns of 2 or 3 samples
    samples[-1], samples[0] = 0.5, -0.25
    result = peaks(samples, sample_rate=RATE)
    assert result.shape == (400, 2)
    assert result[-1, 1] == 64 and result[0, 0] == -32 and not result[1:-1].any()
    assert peaks(samples, sample_rate=RATE, columns=7).shape == (7, 2)


def test_stereo_with_a_silent_channel_reads_the_other_channel():
    left = sine(220, 1.0, RATE, amplitude=0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    assert np.array_equal(peaks(stereo, sample_rate=RATE), peaks(left, sample_rate=RATE))
    assert np.array_equal(peaks(stereo[:, ::-1], sample_rate=RATE), peaks(left, sample_rate=RATE))


def test_stereo_columns_take_the_right_frames_of_every_channel():
    frames = np.zeros((4000, 2), dtype=np.float32)
    frames[2500, 1] = 1.0  # in the third of four columns, on the right
    frames[999, 0] = -0.5  # the last frame of the first column, on the left
    result = peaks(frames, sample_rate=RATE, columns=4)
    assert result.tolist() == [[-64, 0], [0, 0], [0, 127], [0, 0]]


@pytest.mark.filterwarnings("error")  # casting NaN to int8 warns, and its value is not defined
def test_overs_clip_to_full_scale_and_nan_is_never_drawn():
    samples = np.array([1.5, -2.0, 0.25, np.nan, np.nan, np.nan, np.inf, -np.inf], dtype=np.float32)
    result = peaks(samples, sample_rate=RATE, columns=4)
    assert result.tolist() == [[-127, 127], [32, 32], [0, 0], [-127, 127]]


def test_no_samples_no_columns_and_bad_arguments_are_input_errors():
    assert peaks(np.zeros(0, dtype=np.float32), sample_rate=RATE).shape == (0, 2)
    assert peaks(np.zeros((0, 2), dtype=np.float32), sample_rate=RATE).shape == (0, 2)
    with pytest.raises(InputError):
        peaks(np.zeros(10, dtype=np.float32), sample_rate=RATE, columns=0)
    with pytest.raises(InputError):
        peaks(np.zeros(10, dtype=np.float32), sample_rate=0)
    with pytest.raises(InputError):
        peaks(np.zeros((2, 2, 2), dtype=np.float32), sample_rate=RATE)


def test_overview_spans_the_samples_and_bytes_round_trip():
    drawn = overview(sine(440, 1.5, RATE), sample_rate=RATE)
    assert drawn.duration == pytest.approx(1.5) and drawn.columns == WAVEFORM_COLUMNS
    data = to_bytes(drawn.peaks)
    assert len(data) == 2 * WAVEFORM_COLUMNS and data[:2] == bytes(np.int8(drawn.peaks[0]).view(np.uint8))
    assert np.array_equal(from_bytes(data), drawn.peaks)
    with pytest.raises(InputError):
        from_bytes(b"\x01\x02\x03")


# -- the store and ingest -------------------------------------------------------------


def _add(library: Library, tmp_path, samples=None, name="clicks.wav", *, copy=False) -> str:
    samples = click_track(120, 4.0, RATE) if samples is None else samples
    [result] = library.ingest([write_audio(tmp_path / "in" / name, samples, RATE)], copy=copy)
    assert result.status == "added", result.error
    return result.track_id


def test_store_round_trip(fake_library, tmp_path):
    track_id = _add(fake_library, tmp_path)
    store = fake_library._store.waveforms
    made = np.array([[-3, 4], [-127, 127], [0, 0]], dtype=np.int8)
    assert store.save(track_id, WaveformWrite(WAVEFORM_VERSION, 2.5, made))
    duration, got = store.get(track_id, version=WAVEFORM_VERSION)
    assert duration == 2.5 and got.dtype == np.int8 and np.array_equal(got, made)
    [(blob,)] = fake_library._store.db.rows("t", "SELECT peaks FROM waveforms WHERE track_id = ?", [track_id])
    assert bytes(blob) == to_bytes(made)  # the store's layout is engine.waveform's
    assert store.get(track_id, version=WAVEFORM_VERSION + 1) is None
    assert set(store.get_many([track_id, "0" * 64], version=WAVEFORM_VERSION)) == {track_id}
    assert store.get_many([], version=WAVEFORM_VERSION) == {}
    assert not store.save("f" * 64, WaveformWrite(WAVEFORM_VERSION, 1.0, made))  # no such track: nothing kept
    assert store.get("f" * 64, version=WAVEFORM_VERSION) is None


def test_ingest_stores_an_overview_with_the_clicks_where_they_are(fake_library, tmp_path):
    track_id = _add(fake_library, tmp_path)  # 120 BPM for 4 s: a click every 0.5 s
    duration, stored = fake_library._store.waveforms.get(track_id, version=WAVEFORM_VERSION)
    assert duration == pytest.approx(4.0) and stored.shape == (WAVEFORM_COLUMNS, 2)
    loud = np.flatnonzero(stored[:, 1] > 40)
    starts = np.flatnonzero(np.diff(np.concatenate([[-2], loud])) > 1)  # the first column of each run
    assert loud[starts].tolist() == [i * 50 for i in range(8)]  # 0.5 s of 4 s is 50 of 400 columns
    assert stored[:, 1].max() <= round(0.8 * FULL_SCALE) + 1  # the clicks peak at 0.8


def test_ingest_draws_the_mono_downmix_a_decode_holds(fake_library, tmp_path):
    left = sine(440, 2.0, RATE, amplitude=0.8)
    track_id = _add(fake_library, tmp_path, np.stack([left, np.zeros_like(left)], axis=1), "stereo.wav")
    _, stored = fake_library._store.waveforms.get(track_id, version=WAVEFORM_VERSION)
    assert abs(int(stored[:, 1].max()) - 51) <= 1  # 0.8 / 2 channels * 127


def test_deleting_a_track_deletes_its_overview(fake_library, tmp_path):
    track_id = _add(fake_library, tmp_path)
    fake_library.delete(track_id)
    assert not fake_library._store.db.rows("t", "SELECT 1 FROM waveforms WHERE track_id = ?", [track_id])


# -- Library.waveform -------------------------------------------------------------------


def _forget(library: Library, track_id: str) -> None:
    library._store.db.execute("t", "DELETE FROM waveforms WHERE track_id = ?", [track_id])


def test_library_waveform_reads_the_stored_one(fake_library, tmp_path):
    track_id = _add(fake_library, tmp_path)
    waveform = fake_library.waveform(track_id)
    assert isinstance(waveform, Waveform)
    assert np.array_equal(waveform.peaks, fake_library._store.waveforms.get(track_id, version=WAVEFORM_VERSION)[1])
    assert np.array_equal(fake_library.waveform(track_id[:10]).peaks, waveform.peaks)  # a prefix works too
    with pytest.raises(NotFoundError):
        fake_library.waveform("0" * 64)


@pytest.mark.parametrize("copy", [False, True])
def test_library_waveform_computes_a_missing_one_and_keeps_it(fake_library, tmp_path, copy):
    track_id = _add(fake_library, tmp_path, copy=copy)
    before = fake_library.waveform(track_id)
    _forget(fake_library, track_id)
    assert fake_library._store.waveforms.get(track_id, version=WAVEFORM_VERSION) is None
    again = fake_library.waveform(track_id[:12])
    assert again.duration == pytest.approx(before.duration) and np.array_equal(again.peaks, before.peaks)
    assert fake_library._store.waveforms.get(track_id, version=WAVEFORM_VERSION) is not None  # stored


def test_library_waveform_replaces_an_older_version(fake_library, tmp_path):
    track_id = _add(fake_library, tmp_path)
    fake_library._store.db.execute("t", "UPDATE waveforms SET version = 0, peaks = ? WHERE track_id = ?",
                                   [b"\x00\x00", track_id])
    assert fake_library.waveform(track_id).columns == WAVEFORM_COLUMNS
    [(version, size)] = fake_library._store.db.rows(
        "t", "SELECT version, octet_length(peaks) FROM waveforms WHERE track_id = ?", [track_id])
    assert (version, size) == (WAVEFORM_VERSION, 2 * WAVEFORM_COLUMNS)


def test_library_waveform_is_none_when_the_file_is_gone_or_broken(fake_library, tmp_path):
    gone = _add(fake_library, tmp_path, name="gone.wav")
    (tmp_path / "in" / "gone.wav").unlink()
    assert fake_library.waveform(gone) is not None  # the stored one still shows what was there
    _forget(fake_library, gone)
    assert fake_library.waveform(gone) is None

    broken = _add(fake_library, tmp_path, sine(330, 1.0, RATE), name="broken.wav", copy=True)
    _forget(fake_library, broken)
    fake_library.audio_path(fake_library.track(broken)).write_bytes(b"RIFF" + bytes(4000))  # not audio any more
    assert fake_library.waveform(broken) is None
    assert fake_library._store.waveforms.get(broken, version=WAVEFORM_VERSION) is None  # nothing kept


def _library_at(data_dir, embedder) -> Library:
    return Library(Settings(data_dir=data_dir, clap_model=str(data_dir / "no-model")),
                   embedder_provider=lambda: embedder)


def test_export_and_import_carry_the_overviews(tmp_path):
    fake = FakeEmbedder()
    with _library_at(tmp_path / "a", fake) as source:
        ids = [_add(source, tmp_path, name="clicks.wav"), _add(source, tmp_path, sine(440, 1.0, RATE), "s.wav")]
        expected = {track_id: source.waveform(track_id) for track_id in ids}
        source.export(tmp_path / "backup")
    with _library_at(tmp_path / "b", fake) as restored:
        restored.restore(tmp_path / "backup")
        got = restored._store.waveforms.get_many(ids, version=WAVEFORM_VERSION)  # rows, not recomputed
        assert set(got) == set(ids)
        for track_id, waveform in expected.items():
            assert got[track_id][0] == pytest.approx(waveform.duration)
            assert np.array_equal(got[track_id][1], waveform.peaks)


# -- the figure -----------------------------------------------------------------------


def test_figure_draws_the_band_and_shades_the_segment():
    from ui_waveform import waveform_figure

    waveform = overview(sine(440, 4.0, RATE, amplitude=0.5), sample_rate=RATE)
    figure = waveform_figure(waveform, segment=(1.0, 11.0), height=48)
    [band] = figure.data
    assert band.fill == "toself" and len(band.x) == 2 * WAVEFORM_COLUMNS
    assert max(band.y) == pytest.approx(waveform.peaks[:, 1].max() / FULL_SCALE)
    assert min(band.x) > 0 and max(band.x) < 4.0
    [shape] = figure.layout.shapes
    assert (shape.type, shape.x0, shape.x1) == ("rect", 1.0, 4.0)  # a 10 s window clipped to the 4 s drawn
    assert figure.layout.height == 48 and not figure.layout.xaxis.visible and not figure.layout.yaxis.visible
    assert tuple(figure.layout.xaxis.range) == (0, 4.0)


def test_figure_without_a_segment_has_no_shape_and_an_empty_overview_still_draws():
    from ui_waveform import waveform_figure

    waveform = overview(sine(440, 1.0, RATE), sample_rate=RATE)
    assert not waveform_figure(waveform).layout.shapes
    assert not waveform_figure(waveform, segment=(None, None)).layout.shapes
    empty = waveform_figure(Waveform(0.0, np.zeros((0, 2), dtype=np.int8)), segment=(0.0, 10.0))
    assert not empty.data and tuple(empty.layout.xaxis.range) == (0, 1.0)
