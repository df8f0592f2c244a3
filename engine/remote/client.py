"""A running server's library, through its API, with the Library methods the CLI uses.

Each method returns what the Library method of the same name returns (Tracks, Hits, Folders, sync
reports, file results) and raises the same EngineError, rebuilt from the API's JSON, so a command
prints the same text and JSON either way. Long operations (an import of paths, a sync, a folder to
add, an export) are server tasks (engine.tasks), followed until they end with their progress shown.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import fields
from pathlib import Path

import requests

from engine import errors
from engine.audio import check_file
from engine.duplicates import DuplicateGroup
from engine.errors import EngineError
from engine.ingest import Progress
from engine.remote.record import ServerRecord
from engine.search import Hit
from engine.stages import FileResult
from engine.store import Filters, Folder, JobStatus, Track
from engine.sync import SyncProgress, SyncReport

CONNECT_TIMEOUT_S = 5
ANSWER_TIMEOUT_S = 600  # a search may wait for the model to load the first time
POLL_S = 0.25
HEALTH_TRIES = 3
PAGE = 1000  # the most tracks one /audio/files request returns


class ServerGone(Exception):
    """The note names a server that does not answer: the caller opens the library itself."""


class RemoteLibrary:
    def __init__(self, record: ServerRecord, settings):
        self.record = record
        self.settings = settings
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy from the environment: the token goes to this machine only
        self._http.headers["Authorization"] = f"Bearer {record.token}"
        for attempt in range(HEALTH_TRIES):
            try:
                self._http.get(f"{record.url}/health", timeout=CONNECT_TIMEOUT_S).raise_for_status()
                return
            except requests.RequestException as exc:
                problem = exc
                if attempt + 1 < HEALTH_TRIES:
                    time.sleep(attempt + 1)  # a server leaves its note a moment before it listens
        self._http.close()
        raise ServerGone(str(problem))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteLibrary:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def tracks(self, filters: Filters = Filters(), *, missing: bool = False, limit: int = 50,
               offset: int = 0) -> list[Track]:
        found: list[Track] = []
        while len(found) < limit:
            page = min(PAGE, limit - len(found))
            items = self._call("GET", "/audio/files", params={**filter_params(filters), "missing": missing,
                                                             "skip": offset + len(found), "limit": page})
            found += [track_from(item) for item in items]
            if len(items) < page:
                break
        return found

    def track(self, track_id: str) -> Track:
        return track_from(self._call("GET", f"/audio/files/{quoted(track_id)}/metadata"))

    def delete(self, track_id: str) -> Track:
        track = self.track(track_id)  # resolves a prefix; the answer to the delete is shorter
        self._call("DELETE", f"/audio/files/{quoted(track.id)}")
        return track

    def folders(self) -> list[Folder]:
        return [Folder(**{**item, "added_at": local_time(item["added_at"]),
                          "last_sync": local_time(item["last_sync"])}) for item in self._call("GET", "/folders")]

    # -- searching --------------------------------------------------------------

    def search_text(self, text: str, *, filters: Filters = Filters(), **options) -> list[Hit]:
        if not text.strip():  # as the library says it, before a request the schema would refuse
            raise errors.InputError("type something to search for.", title="Empty prompt")
        body = {"query": text.strip(), **filter_body(filters), **search_options(**options)}
        return [hit_from(item) for item in self._call("POST", "/search/text", json=body)]

    def search_audio(self, path: Path, *, filters: Filters = Filters(), **options) -> list[Hit]:
        settings = self.settings
        check_file(Path(path), allowed_extensions=settings.allowed_extensions,
                   max_size_bytes=settings.max_file_size_bytes, display_name=str(path))
        with open(path, "rb") as clip:
            items = self._call("POST", "/search/audio", params=filter_params(filters),
                               data=search_options(**options), files={"file": (Path(path).name, clip)})
        return [hit_from(item) for item in items]

    def search_like(self, track_id: str, *, filters: Filters = Filters(), but: str | None = None,
                    weight: float = 0.5, **options) -> list[Hit]:
        if but is not None and but.strip() and not 0 <= weight <= 2:  # as the library says it
            raise errors.InputError(f"the weight of {but.strip()!r} must be between 0 and 2, not {weight}.",
                                    title="Invalid search")
        turn = {"but": but.strip(), "weight": weight} if but is not None and but.strip() else {}
        params = {**filter_params(filters), **search_options(**options), **turn}
        return [hit_from(item) for item in self._call("GET", f"/search/similar/{quoted(track_id)}", params=params)]

    # -- what a person keeps ----------------------------------------------------------

    def set_favourite(self, track_id: str, on: bool = True) -> Track:
        return track_from(self._call("PUT" if on else "DELETE", f"/audio/files/{quoted(track_id)}/favourite"))

    def tag(self, track_id: str, *, add=(), remove=()) -> Track:
        return track_from(self._call("POST", f"/audio/files/{quoted(track_id)}/tags",
                                     json={"add": list(add), "remove": list(remove)}))

    def tags(self) -> list[tuple[str, int]]:
        return [(item["tag"], item["tracks"]) for item in self._call("GET", "/tags")]

    def collections(self) -> list[dict]:
        return [{**c, "created_at": local_time(c["created_at"])} for c in self._call("GET", "/collections")]

    def create_collection(self, name: str) -> str:
        return self._call("POST", "/collections", json={"name": name})["name"]

    def delete_collection(self, name: str) -> str:
        return self._call("DELETE", f"/collections/{quoted(name)}")["name"]

    def add_to_collection(self, name: str, track_ids: list[str]) -> str:
        return self._call("POST", f"/collections/{quoted(name)}/tracks", json={"ids": list(track_ids)})["name"]

    def remove_from_collection(self, name: str, track_ids: list[str]) -> str:
        return self._call("DELETE", f"/collections/{quoted(name)}/tracks", params={"id": list(track_ids)})["name"]

    def collection(self, name: str) -> tuple[str, list[Track]]:
        contents = self._call("GET", f"/collections/{quoted(name)}")
        return contents["name"], [track_from(item) for item in contents["tracks"]]

    def duplicates(self, *, threshold: float) -> list[DuplicateGroup]:
        if not 0 < threshold <= 1:  # as the library says it
            raise errors.InputError(f"the threshold is a cosine between 0 and 1, not {threshold}.",
                                    title="Invalid threshold")
        groups = self._call("GET", "/duplicates", params={"threshold": threshold})
        found = {t.id: t for t in self.tracks_by_id([i for g in groups for i in g["ids"]])}
        return [DuplicateGroup(tracks=[found[i] for i in g["ids"] if i in found],
                               pairs=[(p["a"], p["b"], p["score"]) for p in g["pairs"]]) for g in groups]

    def copies(self) -> list[Track]:
        return [track_from(item) for item in self._call("GET", "/duplicates/exact")]

    def tracks_by_id(self, track_ids: list[str]) -> list[Track]:
        return [self.track(track_id) for track_id in dict.fromkeys(track_ids)]

    # -- API keys (the server lets only its own user manage them) ------------------------

    def create_api_key(self, name: str) -> str:
        if not name.strip() or len(name.strip()) > 64:  # as the library says it
            raise errors.InputError("an API key needs a name of 1 to 64 characters.", title="Invalid name")
        return self._call("POST", "/auth/keys", json={"name": name.strip()})["key"]

    def revoke_api_key(self, name: str) -> None:
        self._call("DELETE", f"/auth/keys/{quoted(name.strip())}")

    def api_keys(self) -> list[dict]:
        return [{**key, "created_at": local_time(key["created_at"])} for key in self._call("GET", "/auth/keys")]

    # -- changing: tasks on the server --------------------------------------------

    def ingest(self, paths, *, copy: bool = False, progress=None) -> list[FileResult]:
        given = [Path(p).expanduser() for p in paths]
        names = Names(given)

        def replay(event: dict, last: dict) -> None:
            finished = FileResult(names.local(event.get("source", "")), JobStatus.ADDED)  # FileBar reads the name
            for _ in range(event.get("done", 0) - last.get("done", 0)):
                progress(Progress("", finished.source, "done", 1.0, result=finished))

        result = self._task("/tasks/ingest", {"paths": names.sent, "copy": copy}, replay if progress else None,
                            names)
        return [FileResult(source=names.local(item["source"]), status=JobStatus(item["status"]),
                           track_id=item["track_id"], error=names.local(item["error"]), job_id=item["job_id"],
                           note=item["note"]) for item in result]

    def sync(self, paths=None, *, prune: bool = False, progress=None) -> SyncReport:
        names = Names([Path(p).expanduser() for p in paths or ()])
        return SyncReport(**self._task("/tasks/sync", {"paths": names.sent, "prune": prune},
                                       sync_replay(progress), names))

    def add_folder(self, path, *, watch: bool = True, progress=None) -> SyncReport:
        # The library names a folder it cannot add by its absolute path: nothing to map back.
        names = Names([Path(str(path).strip().strip('"').strip("'")).expanduser()], map_back=False)
        return SyncReport(**self._task("/tasks/add-folder", {"path": names.sent[0], "watch": watch},
                                       sync_replay(progress), names))

    def remove_folder(self, path) -> dict:
        names = Names([Path(str(path).strip())])
        return self._call("DELETE", "/folders", params={"path": names.sent[0]}, names=names)

    def export(self, target: Path) -> dict:
        names = Names([Path(target).expanduser()])
        return self._task("/tasks/export", {"target": names.sent[0]}, None, names)

    def _task(self, route: str, body: dict, replay, names: Names):
        task = self._call("POST", route, json=body)
        last: dict = {}
        while task["status"] not in ("done", "failed"):
            time.sleep(POLL_S)
            task = self._call("GET", f"/tasks/{task['id']}")
            if replay is not None and task["progress"] and task["progress"] != last:
                replay(task["progress"], last)
                last = task["progress"]
        if task["error"]:
            raise rebuilt(task["error"], names)
        return task["result"]

    # -- HTTP ---------------------------------------------------------------------

    def _call(self, method: str, route: str, *, names: Names | None = None, **request):
        url = self.record.url + route
        try:
            response = self._http.request(method, url, timeout=(CONNECT_TIMEOUT_S, ANSWER_TIMEOUT_S), **request)
        except requests.RequestException as exc:
            raise EngineError(f"no answer from the dashboard's server at {self.record.url} ({type(exc).__name__}).",
                              hint="Check that the dashboard still runs, then run the command again.",
                              title="Server unreachable") from None
        if response.status_code >= 400:
            try:
                detail = response.json()["detail"]
            except (ValueError, KeyError, TypeError):
                detail = {"title": "Server error", "message": f"HTTP {response.status_code} from {url}."}
            raise rebuilt(detail, names)
        return response.json()


class Names:
    """Paths as the user typed them and as sent (absolute: the server has its own working folder),
    so that what comes back names them as typed, as when the CLI opens the library itself."""

    def __init__(self, given: list[Path], *, map_back: bool = True):
        self.sent = [str(p.absolute()) for p in given]
        back = sorted(((sent, str(p)) for sent, p in zip(self.sent, given) if sent != str(p) and map_back),
                      key=lambda pair: -len(pair[0]))
        # A sent path where it ends, not inside a longer name ("/a/s" in "/a/samples").
        self._back = [(re.compile(re.escape(sent) + r"(?=/|\s|$|[:'\"),;])"), typed) for sent, typed in back]

    def local(self, text: str | None) -> str | None:
        if text is None:
            return None
        for sent, typed in self._back:
            text = sent.sub(lambda _: typed, text)
        return text


def rebuilt(detail: dict, names: Names | None = None) -> EngineError:
    """The engine error an API error stands for: its class when named, else the base class."""
    if not isinstance(detail, dict):  # a route that does not exist answers {"detail": "Not Found"}
        detail = {"title": "Server error", "message": str(detail)}
    kind = getattr(errors, str(detail.get("type") or ""), None)
    if not (isinstance(kind, type) and issubclass(kind, EngineError)):
        kind = EngineError
    local = names.local if names is not None else (lambda text: text)
    return kind(local(detail.get("message") or ""), hint=local(detail.get("hint")), title=detail.get("title"))


def sync_replay(progress):
    if progress is None:
        return None
    return lambda event, last: progress(SyncProgress(**event))


def search_options(*, limit: int = 20, min_score: float | None = None, segments: bool = False) -> dict:
    if limit < 1:  # as the library says it
        raise errors.InputError("the result limit must be at least 1.", title="Invalid search")
    return {"limit": limit, "segments": segments, **({"min_score": min_score} if min_score is not None else {})}


def filter_body(filters: Filters) -> dict:
    """Filters as the text search's JSON body names them."""
    body = {"min_duration": filters.min_duration, "max_duration": filters.max_duration,
            "min_tempo": filters.min_tempo, "max_tempo": filters.max_tempo, "formats": list(filters.formats),
            "kinds": list(filters.kinds), "key": filters.key, "compatible_with": filters.compatible_with,
            "categories": list(filters.categories), "favourite": filters.favourite or None, "tags": list(filters.tags),
            "collection": filters.collection}
    return {name: value for name, value in body.items() if value not in (None, [])}


def filter_params(filters: Filters) -> dict:
    """Filters as query parameters (repeated ones singular: ``format``, ``kind``, ``category``)."""
    body = filter_body(filters)
    for plural, singular in (("formats", "format"), ("kinds", "kind"), ("categories", "category"), ("tags", "tag")):
        if plural in body:
            body[singular] = body.pop(plural)
    return body


def quoted(track_id: str) -> str:
    return requests.utils.quote(track_id, safe="")


def local_time(text: str | None) -> dt.datetime | None:
    """The API's timestamps carry their offset; the library's are local wall-clock times."""
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text)
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


TRACK_FIELDS = tuple(field.name for field in fields(Track))
HIT_FIELDS = tuple(field.name for field in fields(Hit))


def track_from(item: dict) -> Track:
    values = {name: item[name] for name in TRACK_FIELDS if name in item}
    values["created_at"] = local_time(item["created_at"])
    values["categories"] = tuple((c["name"], c["score"]) for c in item.get("categories", ()))
    values["locations"] = tuple(item.get("locations", ()))
    values["tags"] = tuple(item.get("tags", ()))
    values["collections"] = tuple(item.get("collections", ()))
    return Track(**values)


def hit_from(item: dict) -> Hit:
    values = {name: item[name] for name in HIT_FIELDS if name in item}
    values.update(score=item["similarity_score"], path=item["file_path"], created_at=local_time(item["created_at"]),
                  tags=tuple(item.get("tags", ())))
    return Hit(**values)
