#!/bin/sh
# privet container entrypoint.
#
# For every PRIVET_<NAME>_FILE variable, read the file and export PRIVET_<NAME> (the
# Docker `_FILE` convention), so that passwords, database URLs and PINs can come from
# Docker/Compose secrets or mounted Kubernetes Secrets instead of plain environment
# variables; settings whose own name ends in _FILE are left alone. Setting both PRIVET_<NAME> and PRIVET_<NAME>_FILE is an error. Then exec the
# command (by default `privet serve --host 0.0.0.0`).
set -eu

for file_var in $(env | sed -n 's/^\(PRIVET_[A-Z0-9_]*_FILE\)=.*/\1/p'); do
    case "$file_var" in
        # Settings whose own name ends in _FILE (kept in sync by tests/deploy).
        PRIVET_LEDGER_SIGNING_KEY_FILE) continue ;;
    esac
    var="${file_var%_FILE}"
    eval "path=\${$file_var}"
    eval "already=\${$var:-}"
    if [ -n "$already" ]; then
        echo "privet-entrypoint: both $var and $file_var are set; use one" >&2
        exit 64
    fi
    if [ ! -r "$path" ]; then
        echo "privet-entrypoint: $file_var=$path is not a readable file" >&2
        exit 66
    fi
    # Strip one trailing newline (secrets written with `echo` carry one).
    value="$(cat "$path")"
    export "$var=$value"
    unset "$file_var"
done

exec "$@"
