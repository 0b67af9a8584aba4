#!/usr/bin/env bash
# Start one capport Celery worker: it takes the stages of runs made with `executor: celery`
# from the broker and runs them (docs/deploy.md, "Several machines").
#
#   deploy/start-worker.sh [CONCURRENCY] [celery worker options...]
#
# Environment:
#   DAGSTER_HOME                required: an absolute directory holding a dagster.yaml whose
#                               storage all machines reach (deploy/dagster.yaml: PostgreSQL);
#                               the same path as on the machines that launch runs
#   CAPPORT_CELERY_BROKER       required: the broker, as the launching machines have it
#                               (redis://host:6379/0, amqp://user:pass@host:5672//)
#   CAPPORT_CELERY_BACKEND      result backend (default: the broker when Redis, else rpc://)
#   CAPPORT_CELERY_QUEUE        queue to take stages from (default: dagster)
#   CAPPORT_WORKER_CONCURRENCY  stages run at once (default: the CPU count, 2 on 2 cores);
#                               the first argument, when given, wins
#   CAPPORT_PYTHON              the Python with capport-dagster[celery,postgres] installed
#                               (default: $VIRTUAL_ENV's, else this repository's .venv, else
#                               python3 on PATH)
#   DAGSTER_PG_*, AWS_*         what deploy/dagster.yaml and object-store paths read
#
# The worker imports the project once, at start: restart it after every code change (a new
# task, a new version of capport_dagster), or it runs stages with the old code.
set -euo pipefail

fail() {
    echo "start-worker.sh: $*" >&2
    exit 2
}

if [[ -z "${DAGSTER_HOME:-}" ]]; then
    fail "DAGSTER_HOME is not set: export DAGSTER_HOME=/absolute/dir holding the instance's" \
        "dagster.yaml (deploy/dagster.yaml: PostgreSQL that every machine reaches), the same" \
        "path as on the machines that launch runs"
fi
if [[ "$DAGSTER_HOME" != /* ]]; then
    fail "DAGSTER_HOME=$DAGSTER_HOME is not an absolute path"
fi
if [[ ! -d "$DAGSTER_HOME" ]]; then
    fail "DAGSTER_HOME=$DAGSTER_HOME is not an existing directory"
fi
if [[ ! -f "$DAGSTER_HOME/dagster.yaml" ]]; then
    # Stages use the instance their run names (with its `env:` references read here), so this
    # only warns: the tools run on this machine (capport run --resume, dagster) would not find it.
    echo "start-worker.sh: warning: no dagster.yaml in DAGSTER_HOME=$DAGSTER_HOME (copy" \
        "deploy/dagster.yaml there)" >&2
fi
if [[ -z "${CAPPORT_CELERY_BROKER:-}" ]]; then
    fail "CAPPORT_CELERY_BROKER is not set: export CAPPORT_CELERY_BROKER=redis://host:6379/0" \
        "(or amqp://user:password@host:5672//), the broker the machines that launch runs use"
fi

concurrency="${CAPPORT_WORKER_CONCURRENCY:-}"
if [[ $# -gt 0 && "$1" != -* ]]; then
    concurrency="$1"
    shift
fi
if [[ -z "$concurrency" ]]; then
    concurrency="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
fi
if ! [[ "$concurrency" =~ ^[1-9][0-9]*$ ]]; then
    fail "concurrency must be a whole number of 1 or more, got '$concurrency'"
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${CAPPORT_PYTHON:-}"
if [[ -z "$python" && -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    python="$VIRTUAL_ENV/bin/python"
fi
if [[ -z "$python" && -x "$here/../.venv/bin/python" ]]; then
    python="$here/../.venv/bin/python"
fi
python="${python:-python3}"
if ! "$python" -c 'import importlib.util as u, sys
sys.exit(0 if u.find_spec("capport_dagster") and u.find_spec("dagster_celery") else 1)' \
    2>/dev/null; then
    fail "$python has no capport_dagster with dagster-celery: pip install" \
        "'capport-dagster[celery,postgres]' there, or point CAPPORT_PYTHON at the Python that" \
        "has it"
fi

# -Q: the queue capport's executor submits stages to. --prefetch-multiplier 1: a worker process
# reserves one stage at a time, so a long stage never holds others back on a busy worker.
# --without-mingle/--without-gossip: no worker-to-worker chatter at start-up and after (a
# worker only needs the broker).
exec "$python" -m celery -A capport_dagster.celery_worker worker \
    -Q "${CAPPORT_CELERY_QUEUE:-dagster}" \
    --concurrency "$concurrency" \
    --prefetch-multiplier 1 \
    --without-mingle --without-gossip \
    "$@"
