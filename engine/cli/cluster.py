"""Commands for ingest beyond one machine: ``ingest --ray [ADDRESS]`` and ``import-shards DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.cli.common import EXIT_FAILED, EXIT_OK, emit, open_library, print_json

BUSY_HINT = ("a cluster ingest merges thousands of tracks in bulk into the library it opens: stop the dashboard "
             "(Ctrl-C where it runs) for the merge, or write the shards with another --data-dir and run "
             "'import-shards' later.")


def add_ray_options(ingest) -> None:
    """``ingest``'s options for running as a Ray Data job (engine.cluster)."""
    group = ingest.add_argument_group("on a Ray cluster (pip install -r requirements-ray.txt)")
    group.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run as a Ray Data job: a local Ray when no ADDRESS is given, 'auto' on a cluster "
                            "node, or ray://HEAD:10001")
    group.add_argument("--shards", type=Path, metavar="DIR",
                       help="where the job writes its shards (default DATA_DIR/shards; the same folder again "
                            "finishes a stopped job)")
    group.add_argument("--actors", type=int, default=1, help="model actors (one GPU each where there are GPUs)")
    group.add_argument("--batch-files", type=int, default=8, help="files an actor embeds in one batch")
    group.add_argument("--batch-windows", type=int, help="10 s windows per model forward in the actors (default "
                       "TRAUM_CLAP_BATCH_WINDOWS where set, else 128 on a GPU and 8 on a CPU)")
    group.add_argument("--shard-files", type=int, default=256, help="files per shard")
    group.add_argument("--cpus", type=int, help="CPUs for a local Ray (default: all)")
    group.add_argument("--actor-threads", type=int, help="torch threads per CPU model actor (default on a local "
                       "Ray: its CPUs shared among the actors; on a cluster: Ray's one per reserved CPU)")


def register(commands, common) -> None:
    merge = commands.add_parser("import-shards", parents=[common],
                                help="merge a cluster ingest's shards into the library",
                                description="Merge the Parquet shards a cluster ingest wrote (here or elsewhere) "
                                            "into the library; shards merged before are skipped.")
    merge.add_argument("folder", type=Path, metavar="DIR")
    merge.set_defaults(run=cmd_import_shards)


def cmd_ingest_on_ray(args) -> int:
    from engine.cluster import ClusterOptions

    options = ClusterOptions(address=args.ray or None, actors=max(1, args.actors),
                             batch_files=max(1, args.batch_files), batch_windows=args.batch_windows,
                             shard_files=max(1, args.shard_files),
                             cpus=args.cpus, actor_threads=args.actor_threads)

    def on_shard(summary) -> None:
        if not args.json:
            print(f"shard written: {summary.shards_written} this run, {summary.tracks} tracks, "
                  f"{summary.audio_s / 3600:.2f} h of audio, {summary.realtime:.1f}x real time", file=sys.stderr)

    with open_library(args, through_server=False, busy_hint=BUSY_HINT) as library:
        summary, merged = library.ingest_on_ray(args.paths, options=options, folder=args.shards, on_shard=on_shard)
    if args.json:
        print_json({"job": summary.to_dict(), "merge": merged.to_dict()})
    else:
        for path, error in summary.failed:
            print(f"FAILED  {error}", file=sys.stderr)
        for name, why in merged.damaged:
            print(f"SKIPPED {name}: {why}", file=sys.stderr)
        print(f"{merged.added} added, {summary.skipped_known} already in the library, {len(summary.failed)} failed; "
              f"{summary.audio_s / 3600:.2f} h of audio in {summary.seconds:.0f} s ({summary.realtime:.1f}x real "
              f"time); {summary.shards_written} shards written, {summary.shards_done_before} kept from before, "
              f"in {summary.folder}.")
    return EXIT_FAILED if summary.failed or merged.damaged else EXIT_OK


def cmd_import_shards(args) -> int:
    def on_shard(merged) -> None:
        if not args.json:
            state = "merged before" if merged.skipped else f"{merged.added} new tracks"
            print(f"{merged.name}: {state}", file=sys.stderr)

    with open_library(args, through_server=False, busy_hint=BUSY_HINT) as library:
        merged = library.import_shards(args.folder, on_shard=on_shard)
    document = merged.to_dict()
    if not args.json:
        for name, why in merged.damaged:
            print(f"SKIPPED {name}: {why}", file=sys.stderr)
    emit(args, document, f"{document['added']} tracks added from {document['shards']} shards "
                         f"({document['merged_before']} merged before, {document['failed']} files had failed, "
                         f"{len(merged.damaged)} shards damaged).")
    return EXIT_FAILED if merged.damaged else EXIT_OK
