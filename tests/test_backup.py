import json

import pytest

from engine.cli import main
from engine.config import Settings
from engine.errors import EngineError
from engine.library import Library
from tests.fixtures_audio import sine, white_noise, write_audio
from tests.fixtures_fake import FakeEmbedder

TABLES_WITH_ROWS = ("tracks", "features", "sources", "track_embeddings", "window_sets", "jobs")


def rows(library, table):
    return library._store.db.frame("dump", f"SELECT * FROM {table}").sort_values(
        list(library._store.db.frame("dump", f"SELECT * FROM {table} LIMIT 0").columns)[:3]
    ).reset_index(drop=True)


def test_round_trip_keeps_rows_search_results_and_segments(tmp_path, audio_dir):
    import numpy as np

    fake = FakeEmbedder()
    source = Library(Settings(data_dir=tmp_path / "a"), embedder_provider=lambda: fake)
    source.ingest([audio_dir / "formats"])  # referenced files
    long = np.concatenate([white_noise(10), sine(440, 10, amplitude=0.5)])
    write_audio(tmp_path / "in" / "long.wav", long, 44_100)
    source.ingest([tmp_path / "in" / "long.wav"], copy=True)  # a managed copy
    source.ingest_upload("upload.wav", (audio_dir / "sine440.wav").read_bytes())
    before = {table: rows(source, table) for table in TABLES_WITH_ROWS}
    queries = [dict(text="440 Hz", limit=10), dict(text="noise", limit=10, segments=True)]
    expected = [[(h.id, round(h.score, 6), h.segment_start) for h in source.search_text(**q)] for q in queries]
    source.close()
    assert main(["export", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "a"), "--json"]) == 0

    assert main(["import", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "b"), "--json"]) == 0
    with Library(Settings(data_dir=tmp_path / "b"), embedder_provider=lambda: fake) as restored:
        for table, frame in before.items():
            assert rows(restored, table).equals(frame), table
        for query, hits in zip(queries, expected):
            assert [(h.id, round(h.score, 6), h.segment_start) for h in restored.search_text(**query)] == hits
        managed = [t for t in restored.tracks(limit=100) if t.storage == "managed"]
        assert len(managed) == 2
        for track in managed:
            path = restored.audio_path(track)
            assert path.is_file() and path.resolve().is_relative_to((tmp_path / "b").resolve())
        referenced = [t for t in restored.tracks(limit=100) if t.storage == "referenced"]
        assert {t.path for t in referenced} == {str((audio_dir / "formats" / f"mix.{e}").resolve())
                                                    for e in ("wav", "flac", "mp3", "m4a")}


def test_import_refuses_a_non_empty_library(tmp_path, audio_dir, capsys):
    with Library(Settings(data_dir=tmp_path / "a")) as library:
        library.ingest([audio_dir / "sine440.wav"])
    assert main(["export", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main(["import", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "a"), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["title"] == "Import refused" and "not empty" in error["message"]


def test_export_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "something").write_text("x")
    from engine.backup import export_library
    from engine.store import Store

    with pytest.raises(EngineError, match="not empty"):
        export_library(Store(tmp_path / "data"), tmp_path / "backup")


def test_import_refuses_paths_that_leave_the_library(tmp_path, audio_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.backup import import_library
    from engine.store import Store

    with Library(Settings(data_dir=tmp_path / "a")) as library:
        library.ingest_upload("x.wav", (audio_dir / "sine440.wav").read_bytes())
    assert main(["export", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "a")]) == 0
    tracks = pq.read_table(tmp_path / "backup" / "tracks.parquet")
    evil = tracks.set_column(tracks.column_names.index("path"), "path", pa.array(["../../outside.wav"]))
    pq.write_table(evil, tmp_path / "backup" / "tracks.parquet")
    store = Store(tmp_path / "b")
    with pytest.raises(EngineError, match="unsafe library path"):
        import_library(store, tmp_path / "backup")
    assert store.tracks.stats()["tracks"] == 0


def test_a_damaged_export_is_a_clear_error(tmp_path):
    from engine.backup import import_library
    from engine.store import Store

    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "manifest.json").write_text("{not json")
    with pytest.raises(EngineError, match="not a readable export"):
        import_library(Store(tmp_path / "b"), tmp_path / "backup")


def test_an_export_from_before_window_sets_and_vector_bytes_imports_every_vector(tmp_path, audio_dir):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fake = FakeEmbedder()
    source = Library(Settings(data_dir=tmp_path / "a"), embedder_provider=lambda: fake)
    write_audio(tmp_path / "in" / "long.wav", np.concatenate([white_noise(10), sine(440, 10, amplitude=0.5)]), 44_100)
    source.ingest([tmp_path / "in" / "long.wav", audio_dir / "sine440.wav"])
    queries = [dict(text="440 Hz", limit=10, segments=True), dict(text="440 Hz", limit=10)]
    expected = [[(h.id, round(h.score, 6), h.segment_start) for h in source.search_text(**query)] for query in queries]
    source.close()
    backup = tmp_path / "backup"
    assert main(["export", str(backup), "--data-dir", str(tmp_path / "a"), "--json"]) == 0
    # Rewrite it as the older layout: one row per window, and no 0003 in the manifest.
    old_rows = []
    for row in pq.read_table(backup / "window_sets.parquet").to_pylist():
        matrix = np.frombuffer(row["embeddings"], dtype="<f4").reshape(len(row["starts_s"]), row["dim"])
        old_rows += [dict(track_id=row["track_id"], model_id=row["model_id"], window_index=i, start_s=start,
                          end_s=end, embedding=vector.tolist())
                     for i, (start, end, vector) in enumerate(zip(row["starts_s"], row["ends_s"], matrix))]
    (backup / "window_sets.parquet").unlink()
    pq.write_table(pa.Table.from_pylist(old_rows), backup / "window_embeddings.parquet")
    # ... and track vectors as lists of floats, as before 0004.
    old_tracks = [{**{k: v for k, v in row.items() if k != "dim"},
                   "embedding": np.frombuffer(row["embedding"], dtype="<f4").tolist()}
                  for row in pq.read_table(backup / "track_embeddings.parquet").to_pylist()]
    pq.write_table(pa.Table.from_pylist(old_tracks), backup / "track_embeddings.parquet")
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["migrations"] = [m for m in manifest["migrations"] if m not in ("0003_window_sets", "0004_embedding_bytes")]
    (backup / "manifest.json").write_text(json.dumps(manifest))

    assert main(["import", str(backup), "--data-dir", str(tmp_path / "b"), "--json"]) == 0
    with Library(Settings(data_dir=tmp_path / "b"), embedder_provider=lambda: fake) as restored:
        assert [[(h.id, round(h.score, 6), h.segment_start) for h in restored.search_text(**query)]
                for query in queries] == expected
        assert len(restored._store.embeddings.windows(fake.model_id)) == 2
