#!/bin/sh
# Create the secret files deploy/compose.yaml reads, with fresh random passwords.
# Idempotent: existing files are kept. Run from anywhere: sh deploy/compose-secrets.sh
#
# The directory is 0700 (only you on this host); the files are 0644 because Compose bind-
# mounts them into containers that run as other users (postgres, uid 10001).
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

put() {  # put NAME VALUE: write VALUE (no trailing newline) unless NAME exists
    if [ ! -s "$dir/$1" ]; then
        printf '%s' "$2" > "$dir/$1"
        chmod 0644 "$dir/$1"
        echo "created $dir/$1"
    fi
}

put postgres_password "$(random)"
put privet_owner_password "$(random)"
put privet_app_password "$(random)"
put ray_auth_token "$(random)"
put privet_owner_database_url \
    "postgresql+psycopg://privet_owner:$(cat "$dir/privet_owner_password")@postgres:5432/privet"
put privet_database_url \
    "postgresql+psycopg://privet:$(cat "$dir/privet_app_password")@postgres:5432/privet"
