from engine.store import JobStatus, Store


def test_stale_jobs_become_interrupted(tmp_path):
    store = Store(tmp_path)
    [job] = store.jobs.create("batch", ["a.wav"])
    store.jobs.update(job, status=JobStatus.RUNNING, stage="decode", progress=0.3)
    store.close()
    store = Store(tmp_path)
    assert store.jobs.interrupt_stale() == 1
    assert store.jobs.list()[0].status == "interrupted"


def test_queueing_nothing_is_nothing(tmp_path):
    store = Store(tmp_path)
    assert store.jobs.create("batch", []) == []
